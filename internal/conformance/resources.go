package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// addResources registers the resources and the template the resources-*
// scenarios read and subscribe to.
func addResources(m *mcpserver.MCPServer) {
	pngData := redPixelPNG()

	m.AddResource(mcp.NewResource("test://static-text", "Static text",
		mcp.WithResourceDescription("A static text resource"), mcp.WithMIMEType("text/plain"),
	), func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{
			URI: "test://static-text", MIMEType: "text/plain",
			Text: "This is the content of the static text resource.",
		}}, nil
	})

	m.AddResource(mcp.NewResource("test://static-binary", "Static binary",
		mcp.WithResourceDescription("A 1x1 red PNG"), mcp.WithMIMEType("image/png"),
	), func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.BlobResourceContents{
			URI: "test://static-binary", MIMEType: "image/png", Blob: pngData,
		}}, nil
	})

	m.AddResource(mcp.NewResource("test://watched-resource", "Watched resource",
		mcp.WithResourceDescription("A resource clients can subscribe to"), mcp.WithMIMEType("text/plain"),
	), func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{
			URI: "test://watched-resource", MIMEType: "text/plain", Text: "Watched resource content",
		}}, nil
	})

	m.AddResourceTemplate(mcp.NewResourceTemplate("test://template/{id}/data", "Template data",
		mcp.WithTemplateDescription("Data for an id"), mcp.WithTemplateMIMEType("application/json"),
	), func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		id, ok := templateID(req.Params.URI)
		if !ok {
			return nil, fmt.Errorf("no id in %q", req.Params.URI)
		}
		body, err := json.Marshal(map[string]any{"id": id, "templateTest": true, "data": "Data for ID: " + id})
		if err != nil {
			return nil, fmt.Errorf("template data: %w", err)
		}
		return []mcp.ResourceContents{mcp.TextResourceContents{
			URI: req.Params.URI, MIMEType: "application/json", Text: string(body),
		}}, nil
	})
}

// templateID extracts {id} from test://template/{id}/data.
func templateID(uri string) (string, bool) {
	rest, ok := strings.CutPrefix(uri, "test://template/")
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, "/data")
	return id, ok && id != "" && !strings.Contains(id, "/")
}
