package conformance

import (
	"context"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// addContentTools registers the tools that return fixed content of each
// kind (tools-call-simple-text, -image, -audio, -embedded-resource,
// -mixed-content, -error).
func addContentTools(m *mcpserver.MCPServer) {
	pngData := redPixelPNG()
	wavData := silentWAV()

	m.AddTool(mcp.NewTool("test_simple_text",
		mcp.WithDescription("Returns a simple text response"),
	), fixed(mcp.NewTextContent("This is a simple text response for testing.")))

	m.AddTool(mcp.NewTool("test_image_content",
		mcp.WithDescription("Returns a 1x1 red PNG image"),
	), fixed(mcp.NewImageContent(pngData, "image/png")))

	m.AddTool(mcp.NewTool("test_audio_content",
		mcp.WithDescription("Returns a tiny WAV file"),
	), fixed(mcp.NewAudioContent(wavData, "audio/wav")))

	m.AddTool(mcp.NewTool("test_embedded_resource",
		mcp.WithDescription("Returns an embedded text resource"),
	), fixed(mcp.NewEmbeddedResource(mcp.TextResourceContents{
		URI:      "test://embedded-resource",
		MIMEType: "text/plain",
		Text:     "This is an embedded resource content.",
	})))

	m.AddTool(mcp.NewTool("test_multiple_content_types",
		mcp.WithDescription("Returns text, image and resource content"),
	), fixed(
		mcp.NewTextContent("Multiple content types test:"),
		mcp.NewImageContent(pngData, "image/png"),
		mcp.NewEmbeddedResource(mcp.TextResourceContents{
			URI:      "test://mixed-content-resource",
			MIMEType: "application/json",
			Text:     `{"test":"data","value":123}`,
		}),
	))

	m.AddTool(mcp.NewTool("test_error_handling",
		mcp.WithDescription("Always returns a tool error"),
	), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultError("This tool intentionally returns an error for testing"), nil
	})
}

// fixed is a handler that always returns content.
func fixed(content ...mcp.Content) mcpserver.ToolHandlerFunc {
	return func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: content}, nil
	}
}
