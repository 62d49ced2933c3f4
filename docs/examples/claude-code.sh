# stdio: Claude Code starts kubeq-mcp itself; the command follows --.
# Name first: --env takes several values and would swallow a name written after it.
claude mcp add kubeq --transport stdio --env KUBE_Q_URL=http://localhost:8000 --env KUBE_Q_API_KEY=your-kubeintellect-api-key -- kubeq-mcp
# stdio, simulated backend, to try it before you have a cluster
claude mcp add kubeq-demo --transport stdio -- kubeq-mcp --demo
# streamable HTTP: a kubeq-mcp already running with --transport http
claude mcp add --transport http kubeq-http http://127.0.0.1:8080/mcp --header "Authorization: Bearer $KUBEQ_MCP_HTTP_TOKEN"
