# stdio: Claude Code starts kubeq-mcp itself; the command follows --, as a full path
# (`command -v kubeq-mcp` prints it). Name first: --env takes several values and would swallow a name written after it.
claude mcp add kubeq --transport stdio --env KUBE_Q_URL=http://localhost:8000 --env KUBE_Q_API_KEY=your-kubeintellect-api-key -- /Users/you/go/bin/kubeq-mcp
# stdio, simulated backend, to try it before you have a cluster
claude mcp add kubeq-demo --transport stdio -- /Users/you/go/bin/kubeq-mcp --demo
# streamable HTTP: a kubeq-mcp already running with --transport http. The single quotes keep
# ${KUBEQ_MCP_HTTP_TOKEN} for Claude Code to read from its environment at each start: the token is not stored.
claude mcp add kubeq-http --transport http http://127.0.0.1:8080/mcp --header 'Authorization: Bearer ${KUBEQ_MCP_HTTP_TOKEN}'
