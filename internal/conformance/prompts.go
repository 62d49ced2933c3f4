package conformance

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// addPrompts registers the prompts of the prompts-* scenarios.
func addPrompts(m *mcpserver.MCPServer) {
	pngData := redPixelPNG()

	m.AddPrompt(mcp.NewPrompt("test_simple_prompt",
		mcp.WithPromptDescription("A simple prompt without arguments"),
	), func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return mcp.NewGetPromptResult("A simple prompt", []mcp.PromptMessage{
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("This is a simple prompt for testing.")),
		}), nil
	})

	m.AddPrompt(mcp.NewPrompt("test_prompt_with_arguments",
		mcp.WithPromptDescription("A prompt with two required arguments"),
		mcp.WithArgument("arg1", mcp.ArgumentDescription("First test argument"), mcp.RequiredArgument()),
		mcp.WithArgument("arg2", mcp.ArgumentDescription("Second test argument"), mcp.RequiredArgument()),
	), func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		a1, a2 := req.Params.Arguments["arg1"], req.Params.Arguments["arg2"]
		if a1 == "" || a2 == "" {
			return nil, fmt.Errorf("arg1 and arg2 are required")
		}
		return mcp.NewGetPromptResult("A prompt with arguments", []mcp.PromptMessage{
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(
				fmt.Sprintf("Prompt with arguments: arg1='%s', arg2='%s'", a1, a2))),
		}), nil
	})

	m.AddPrompt(mcp.NewPrompt("test_prompt_with_embedded_resource",
		mcp.WithPromptDescription("A prompt that embeds a resource"),
		mcp.WithArgument("resourceUri", mcp.ArgumentDescription("URI of the resource to embed"), mcp.RequiredArgument()),
	), func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		uri := req.Params.Arguments["resourceUri"]
		if uri == "" {
			return nil, fmt.Errorf("resourceUri is required")
		}
		return mcp.NewGetPromptResult("A prompt with an embedded resource", []mcp.PromptMessage{
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewEmbeddedResource(mcp.TextResourceContents{
				URI: uri, MIMEType: "text/plain", Text: "Embedded resource content for testing.",
			})),
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("Please process the embedded resource above.")),
		}), nil
	})

	m.AddPrompt(mcp.NewPrompt("test_prompt_with_image",
		mcp.WithPromptDescription("A prompt with an image"),
	), func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return mcp.NewGetPromptResult("A prompt with an image", []mcp.PromptMessage{
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewImageContent(pngData, "image/png")),
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("Please analyze the image above.")),
		}), nil
	})
}

// promptCompletions completes the arguments of test_prompt_with_arguments
// from a small fixed list, by prefix.
type promptCompletions struct{}

var completionWords = []string{"paris", "park", "party", "test", "testing", "tested"}

func (promptCompletions) CompletePromptArgument(_ context.Context, prompt string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	values := []string{}
	if prompt == "test_prompt_with_arguments" {
		for _, w := range completionWords {
			if strings.HasPrefix(w, arg.Value) {
				values = append(values, w)
			}
		}
	}
	return &mcp.Completion{Values: values, Total: len(values)}, nil
}
