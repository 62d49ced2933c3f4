package server

import (
	"encoding/json"

	"github.com/mark3labs/mcp-go/mcp"
)

// newTool builds a tool from reflected input and output schemas.
// mcp.NewTool would preset an input schema of its own, which mcp-go then
// refuses to marshal next to a raw one, so the tool is assembled here.
func newTool(name, title, description string, input, output json.RawMessage, opts ...mcp.ToolOption) mcp.Tool {
	t := mcp.NewToolWithRawSchema(name, description, input)
	t.Title = title
	t.RawOutputSchema = output
	opts = append(opts, mcp.WithTitleAnnotation(title))
	for _, o := range opts {
		o(&t)
	}
	return t
}
