package e2etest

import "testing"

// An answer to another request, parsed late, must not end the call in
// flight: that is how call 0 once had its whole progress counted "after".
func TestWireLogCountsOnlyTheCallsOwnResult(t *testing.T) {
	w := newWireLog()
	w.message([]byte(`{"jsonrpc":"2.0","id":1,"result":{"serverInfo":{}}}`)) // server/discover, parsed late
	w.request([]byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"_meta":{"progressToken":"tok"}}}`))
	w.message([]byte(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"tok","message":"step"}}`))
	w.message([]byte(`{"jsonrpc":"2.0","id":7,"result":{"content":[]}}`))
	w.message([]byte(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"tok","message":"late"}}`))

	before, after := w.totals()
	if before != 1 || after != 1 {
		t.Fatalf("before=%d after=%d, want 1 and 1", before, after)
	}
	if got := w.steps["tok"]; len(got) != 1 || got[0] != "step" {
		t.Fatalf("steps before the result = %q", got)
	}
}
