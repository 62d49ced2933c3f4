// Package fakebackend scripts kubeqtest's fake KubeIntellect for the
// end-to-end checks (e2e/ and internal/e2etest): fixed turns whose progress
// and answers the clients can check byte for byte, and a JSON view of what
// the fake received. Test-only.
package fakebackend

import (
	"strings"
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// The diagnostic turn: six progress-worthy events, then the answer.
const (
	DiagnosticQuestion = "why is checkout crashing?"
	// DiagnosticAnswer has markdown, a newline, a non-ASCII character and
	// quotes, so a client can check that it arrives byte for byte.
	DiagnosticAnswer = "The `checkout` pod is in CrashLoopBackOff: `DB_URL` is not set.\n\n" +
		"Fix: `kubectl set env deployment/checkout DB_URL=postgres://db:5432/shop -n shop` — " +
		"then watch \"checkout\" roll out."
)

// DiagnosticSteps are the progress messages kube_query derives from the
// non-token events of the diagnostic turn, in order: one notification each,
// then at least one more carrying the answer's tokens.
var DiagnosticSteps = []string{
	"[analyzing] Analyzing your request…",
	"running: kubectl get pods -n shop",
	"run_kubectl → checkout-7d4b9cf6-xk2lp 0/1 CrashLoopBackOff 5 (32s ago) 4m",
	"[diagnosing] Reading the pod's logs",
	"running: kubectl logs checkout-7d4b9cf6-xk2lp -n shop --tail=20",
	"run_kubectl → panic: DB_URL is not set",
}

// The approval turns: each proposes deleting a pod (high risk, so the form
// asks for the pod's name). One is meant to be approved, the other declined;
// distinct questions keep their backend sessions apart in the log.
const (
	ApproveQuestion = "delete the crashing checkout pod"
	DeclineQuestion = "delete the crashing cart pod"
	ApprovePod      = "checkout-7d4b9cf6-xk2lp"
	DeclinePod      = "cart-5f8d7c9b4-q2w7e"
	ApprovedAnswer  = "Deleted `checkout-7d4b9cf6-xk2lp`; the Deployment is creating a replacement."
	DeclinedAnswer  = "Understood: I left `cart-5f8d7c9b4-q2w7e` running."
)

// The task turns (e2e/ts/tasks.mjs). TaskQuestion is the diagnostic turn
// with a pause of TaskPause in the middle, so a client polling a task sees
// it working before it completes. A question that starts with SlowPrefix
// (the client adds something unique, so each run finds its own request in
// the log) gets a turn that says one status line and then waits SlowPause
// for a cancel: the fake's log then shows the request disconnected.
const (
	TaskQuestion = "why is checkout crashing? take your time"
	TaskPause    = 2 * time.Second
	SlowPrefix   = "investigate slowly: "
	SlowPause    = 5 * time.Minute
	slowStatus   = "Taking my time…"
	SlowStep     = "[analyzing] " + slowStatus // its progress line
)

// Install scripts the e2e turns on srv.
func Install(srv *kubeqtest.Server) {
	srv.Handle(DiagnosticQuestion, diagnostic(0))
	srv.Handle(TaskQuestion, diagnostic(TaskPause))
	srv.Handle(ApproveQuestion, gate(ApprovePod, ApprovedAnswer, "I did not delete it."))
	srv.Handle(DeclineQuestion, gate(DeclinePod, "Deleted it.", DeclinedAnswer))
	srv.HandleFunc(func(req kubeqtest.Request) kubeqtest.Script {
		if !strings.HasPrefix(req.Question, SlowPrefix) {
			return nil
		}
		return kubeqtest.Script{
			kubeqtest.Status("analyzing", slowStatus),
			kubeqtest.Sleep(SlowPause), // returns early when the client goes away
			kubeqtest.Tokens("Too late: nobody waited."),
		}
	})
}

// diagnostic is the diagnostic turn, with a pause after its third event.
func diagnostic(pause time.Duration) kubeqtest.Script {
	script := kubeqtest.Script{
		kubeqtest.Status("analyzing", "Analyzing your request…"),
		kubeqtest.ToolCall("run_kubectl", "kubectl get pods -n shop"),
		kubeqtest.ToolResult("run_kubectl", "checkout-7d4b9cf6-xk2lp 0/1 CrashLoopBackOff 5 (32s ago) 4m"),
	}
	if pause > 0 {
		script = append(script, kubeqtest.Sleep(pause))
	}
	return append(script,
		kubeqtest.Status("diagnosing", "Reading the pod's logs"),
		kubeqtest.ToolCall("run_kubectl", "kubectl logs checkout-7d4b9cf6-xk2lp -n shop --tail=20"),
		kubeqtest.ToolResult("run_kubectl", "panic: DB_URL is not set"),
		kubeqtest.Tokens(DiagnosticAnswer),
	)
}

func gate(pod, onApprove, onDeny string) kubeqtest.Script {
	return kubeqtest.Script{
		kubeqtest.Status("analyzing", "Analyzing your request…"),
		kubeqtest.Gate{
			Command:   "kubectl delete pod " + pod + " -n shop",
			OnApprove: kubeqtest.Script{kubeqtest.Tokens(onApprove)},
			OnDeny:    kubeqtest.Script{kubeqtest.Tokens(onDeny)},
		},
	}
}

// ScenarioInfo is what a client script needs to know about the e2e turns,
// so the expected values have one source.
type ScenarioInfo struct {
	DiagnosticQuestion string   `json:"diagnostic_question"`
	DiagnosticAnswer   string   `json:"diagnostic_answer"`
	DiagnosticSteps    []string `json:"diagnostic_steps"`
	ApproveQuestion    string   `json:"approve_question"`
	ApprovePod         string   `json:"approve_pod"`
	ApprovedAnswer     string   `json:"approved_answer"`
	DeclineQuestion    string   `json:"decline_question"`
	DeclinePod         string   `json:"decline_pod"`
	DeclinedAnswer     string   `json:"declined_answer"`
	TaskQuestion       string   `json:"task_question"`
	TaskPauseMs        int64    `json:"task_pause_ms"`
	SlowPrefix         string   `json:"slow_prefix"`
	SlowStep           string   `json:"slow_step"`
}

// Scenario describes the turns Install scripts.
func Scenario() ScenarioInfo {
	return ScenarioInfo{
		DiagnosticQuestion: DiagnosticQuestion, DiagnosticAnswer: DiagnosticAnswer,
		DiagnosticSteps: append([]string(nil), DiagnosticSteps...),
		ApproveQuestion: ApproveQuestion, ApprovePod: ApprovePod, ApprovedAnswer: ApprovedAnswer,
		DeclineQuestion: DeclineQuestion, DeclinePod: DeclinePod, DeclinedAnswer: DeclinedAnswer,
		TaskQuestion: TaskQuestion, TaskPauseMs: TaskPause.Milliseconds(),
		SlowPrefix: SlowPrefix, SlowStep: SlowStep,
	}
}
