package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// samplingTimeout bounds how long test_sampling waits for the client.
const samplingTimeout = 5 * time.Second

// addClientRequestTools registers the tools that ask the client something
// in the middle of a call: sampling/createMessage (tools-call-sampling) and
// elicitation/create (tools-call-elicitation, elicitation-sep1034-defaults,
// elicitation-sep1330-enums). A client without the capability gets a tool
// error, as the scenarios ask.
func addClientRequestTools(m *mcpserver.MCPServer) {
	m.AddTool(mcp.NewTool("test_sampling",
		mcp.WithDescription("Asks the client's LLM to answer a prompt"),
		mcp.WithString("prompt", mcp.Required(), mcp.Description("The prompt to send to the LLM")),
	), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		prompt, err := req.RequireString("prompt")
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		if !clientHas(ctx, func(c mcp.ClientCapabilities) bool { return c.Sampling != nil }) {
			return mcp.NewToolResultError("the client does not support sampling"), nil
		}
		// Over HTTP, mcp-go sends sampling/createMessage on the standalone
		// GET stream; bound the wait so a client without one fails fast with
		// a reason instead of its own timeout.
		sctx, cancel := context.WithTimeout(ctx, samplingTimeout)
		defer cancel()
		res, err := m.RequestSampling(sctx, mcp.CreateMessageRequest{CreateMessageParams: mcp.CreateMessageParams{
			Messages:  []mcp.SamplingMessage{{Role: mcp.RoleUser, Content: mcp.NewTextContent(prompt)}},
			MaxTokens: 100,
		}})
		if err != nil {
			return mcp.NewToolResultError("sampling failed (over HTTP, mcp-go delivers sampling requests " +
				"on the standalone GET stream; is one open?): " + err.Error()), nil
		}
		text := fmt.Sprint(res.Content)
		if tc, ok := mcp.AsTextContent(res.Content); ok {
			text = tc.Text
		}
		return mcp.NewToolResultText("LLM response: " + text), nil
	})

	m.AddTool(mcp.NewTool("test_elicitation",
		mcp.WithDescription("Asks the user for a username and an email address"),
		mcp.WithString("message", mcp.Required(), mcp.Description("The message to show the user")),
	), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		msg, err := req.RequireString("message")
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		return elicit(ctx, m, "User response", msg, map[string]any{
			"type": "object",
			"properties": map[string]any{
				"username": map[string]any{"type": "string", "description": "User's response"},
				"email":    map[string]any{"type": "string", "description": "User's email address"},
			},
			"required": []string{"username", "email"},
		}), nil
	})

	m.AddTool(mcp.NewTool("test_elicitation_sep1034_defaults",
		mcp.WithDescription("Elicitation whose fields all have default values (SEP-1034)"),
	), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return elicit(ctx, m, "Elicitation completed", "Please review your details", map[string]any{
			"type": "object",
			"properties": map[string]any{
				"name":     map[string]any{"type": "string", "description": "User name", "default": "John Doe"},
				"age":      map[string]any{"type": "integer", "description": "User age", "default": 30},
				"score":    map[string]any{"type": "number", "description": "User score", "default": 95.5},
				"status":   map[string]any{"type": "string", "description": "User status", "enum": []string{"active", "inactive", "pending"}, "default": "active"},
				"verified": map[string]any{"type": "boolean", "description": "Verification status", "default": true},
			},
			"required": []string{},
		}), nil
	})

	m.AddTool(mcp.NewTool("test_elicitation_sep1330_enums",
		mcp.WithDescription("Elicitation with the five enum variants of SEP-1330"),
	), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		titled := func(prefix string, titles ...string) []map[string]any {
			out := make([]map[string]any, len(titles))
			for i, t := range titles {
				out[i] = map[string]any{"const": fmt.Sprintf("%s%d", prefix, i+1), "title": t}
			}
			return out
		}
		return elicit(ctx, m, "Elicitation completed", "Please pick your options", map[string]any{
			"type": "object",
			"properties": map[string]any{
				"untitledSingle": map[string]any{"type": "string", "enum": []string{"option1", "option2", "option3"}},
				"titledSingle":   map[string]any{"type": "string", "oneOf": titled("value", "First Option", "Second Option", "Third Option")},
				"legacyEnum": map[string]any{"type": "string", "enum": []string{"opt1", "opt2", "opt3"},
					"enumNames": []string{"Option One", "Option Two", "Option Three"}},
				"untitledMulti": map[string]any{"type": "array",
					"items": map[string]any{"type": "string", "enum": []string{"option1", "option2", "option3"}}},
				"titledMulti": map[string]any{"type": "array",
					"items": map[string]any{"anyOf": titled("value", "First Choice", "Second Choice", "Third Choice")}},
			},
		}), nil
	})
}

// elicit asks the client with elicitation/create and reports what came
// back as "<label>: action=<action>, content=<json>".
func elicit(ctx context.Context, m *mcpserver.MCPServer, label, message string, schema map[string]any) *mcp.CallToolResult {
	if !clientHas(ctx, func(c mcp.ClientCapabilities) bool { return c.Elicitation != nil }) {
		return mcp.NewToolResultError("the client does not support elicitation")
	}
	res, err := m.RequestElicitation(ctx, mcp.ElicitationRequest{Params: mcp.ElicitationParams{
		Message:         message,
		RequestedSchema: schema,
	}})
	if err != nil {
		return mcp.NewToolResultError("elicitation failed: " + err.Error())
	}
	content, err := json.Marshal(res.Content)
	if err != nil {
		return mcp.NewToolResultError("elicitation answer: " + err.Error())
	}
	return mcp.NewToolResultText(fmt.Sprintf("%s: action=%s, content=%s", label, res.Action, content))
}

// clientHas reports whether the client declared a capability: per request
// on the 2026 era, at initialize on the 2025 era.
func clientHas(ctx context.Context, has func(mcp.ClientCapabilities) bool) bool {
	if info := mcpserver.RequestProtocolInfoFromContext(ctx); info != nil && info.Modern && info.ClientCapabilities != nil {
		return has(*info.ClientCapabilities)
	}
	if s, ok := mcpserver.ClientSessionFromContext(ctx).(mcpserver.SessionWithClientInfo); ok {
		return has(s.GetClientCapabilities())
	}
	return false
}
