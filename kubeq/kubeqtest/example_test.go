package kubeqtest_test

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// Example shows a scripted turn and an approval gate answered on the same
// session. Real tests point a kubeq.Client at srv.URL; plain net/http keeps
// this example free of the client.
func Example() {
	srv := kubeqtest.NewServer()
	defer srv.Close()

	srv.Handle("why is checkout crashing?", kubeqtest.Script{
		kubeqtest.Status("analyzing", "Analyzing your request…"),
		kubeqtest.ToolCall("run_kubectl", "kubectl get pods -n shop"),
		kubeqtest.ToolResult("run_kubectl", "checkout-7d4b9cf6-xk2lp   0/1   CrashLoopBackOff"),
		kubeqtest.Tokens("DB_URL is not set."),
	})
	srv.Handle("delete the crashing pod", kubeqtest.Script{
		kubeqtest.Gate{Command: "kubectl delete pod checkout-7d4b9cf6-xk2lp -n shop"},
	})

	ask := func(question string) {
		body := `{"messages": [{"role": "user", "content": "` + question + `"}], "stream": true}`
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("X-Session-ID", "demo")
		resp, err := srv.Client().Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer resp.Body.Close()
		frames := 0
		for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
			if strings.HasPrefix(sc.Text(), "data: ") {
				frames++
			}
		}
		fmt.Printf("%q: %d frames\n", question, frames)
	}

	ask("[context: namespace=shop] why is checkout crashing?")
	ask("delete the crashing pod")
	gate, _ := srv.PendingGate("demo")
	fmt.Println("pending:", gate.Command, gate.Risk)
	ask("approve")
	for _, d := range srv.Decisions() {
		fmt.Println("decision:", d.Message, d.Approved)
	}
	fmt.Println("namespace seen:", srv.ChatRequests()[0].Namespace)
	// Output:
	// "[context: namespace=shop] why is checkout crashing?": 9 frames
	// "delete the crashing pod": 6 frames
	// pending: kubectl delete pod checkout-7d4b9cf6-xk2lp -n shop high
	// "approve": 11 frames
	// decision: approve true
	// namespace seen: shop
}
