package server

import (
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/stretchr/testify/assert"
)

// What each SDK sends when it gives up, and when its user stops a call.
func TestCancelReasonsTellAStopFromATimeout(t *testing.T) {
	c := newCancelReasons()
	msg := func(id, reason string) []byte {
		return []byte(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":` + id + `,"reason":"` + reason + `"}}`)
	}
	c.noteMessage("stdio", msg(`1`, "McpError: MCP error -32001: Request timed out")) // TS SDK timeout
	c.noteMessage("stdio", msg(`2`, "context deadline exceeded"))                     // go-sdk timeout
	c.noteMessage("stdio", msg(`3`, "context canceled"))                              // go-sdk: the caller cancelled
	c.noteMessage("stdio", msg(`"abc"`, "AbortError: This operation was aborted"))    // TS SDK: AbortController
	c.noteMessage("stdio", []byte(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":4}}`))
	c.noteMessage("http:s1", msg(`5`, "user pressed stop"))

	id := func(v any) string { return mcp.NewRequestId(v).String() }
	assert.False(t, c.explicit("stdio", id(1)), "a timeout is the client giving up")
	assert.False(t, c.explicit("stdio", id(2)))
	assert.True(t, c.explicit("stdio", id(3)))
	assert.True(t, c.explicit("stdio", id("abc")))
	assert.True(t, c.explicit("stdio", id(4)), "no reason: the user's stop")
	assert.False(t, c.explicit("stdio", id(3)), "a note is taken once")
	assert.False(t, c.explicit("http:s2", id(5)), "another session's notification says nothing of this one")
	assert.True(t, c.explicit("http:s1", id(5)))
	assert.False(t, c.explicit("", id(5)), "no scope, no note")
}
