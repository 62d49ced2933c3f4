// Package kubeqtest is a fake KubeIntellect backend for tests, in the style
// of net/http/httptest. It speaks POST /v1/chat/completions the way the real
// server writes it (Python json.dumps spacing and \u escapes, one
// chatcmpl-<12 hex> id per turn, stream.start first, usage before the stop
// chunk, [DONE] last), keeps HITL approval state per X-Session-ID with the
// server's own phrase sets, and can misbehave on demand.
//
// # Scripted turns
//
// A Script is the list of steps the fake writes for one turn; the end of the
// turn (usage, stop, [DONE]) is added for you:
//
//	srv := kubeqtest.NewServer(kubeqtest.WithHeartbeat(20 * time.Millisecond))
//	t.Cleanup(srv.Close)
//	srv.Handle("why is checkout crashing?", kubeqtest.Script{
//		kubeqtest.Status("analyzing", "Analyzing your request…"),
//		kubeqtest.ToolCall("run_kubectl", "kubectl get pods -n shop"),
//		kubeqtest.ToolResult("run_kubectl", "checkout-7d4b9cf6-xk2lp   0/1   CrashLoopBackOff"),
//		kubeqtest.Sleep(50 * time.Millisecond), // heartbeats while the agent "thinks"
//		kubeqtest.Tokens("`DB_URL` is not set."),
//		kubeqtest.Usage(14210, 655, 14865, 4),
//	})
//	// point the client at srv.URL; ask "[context: namespace=shop] why is checkout crashing?"
//
// Questions are matched exactly after the "[context: namespace=X] " prefix
// is removed (the namespace is logged in Request.Namespace). HandleFunc sets
// a fallback; without one the fake answers with a short echo of the question.
//
// # Approval gates
//
// A Gate is a step: it writes the tool_call, the HITL chunk (markdown prompt,
// hitl_required, action_id, risk_level, human_summary) and ends the turn.
// The next message on the same X-Session-ID answers it: in HITLStrict mode
// (V4, default) only ApprovalPhrases and AutoApprovePhrases approve and
// anything else cancels; in HITLLax mode (V2) anything but a DenialPhrases
// entry approves. Then OnApprove, or "Action cancelled by user." and OnDeny,
// is streamed:
//
//	srv.Handle("delete the crashing pod", kubeqtest.Script{
//		kubeqtest.Gate{Command: "kubectl delete pod checkout-7d4b9cf6-xk2lp -n shop"},
//	})
//	// turn 1 ends with the gate; srv.PendingGate(session) reports it
//	// turn 2 "approve" on the same session streams the deletion
//	// srv.Decisions() then holds {Approved: true, Message: "approve", ...}
//
// # Faults
//
// FailNext(n, fault) breaks the next n chat requests whatever they ask:
// DropConnection, Respond(401|422|429|500), RespondInvalidKey,
// RespondValidationList, RateLimited, CutMidStream, TruncateStream,
// MalformedFrame, HugeFrame, CRLFFrames, SlowStream. Scripts can break one
// answer with the steps CutMidFrame, EndWithoutDone, Malformed, Huge, Raw
// and Fatal.
//
// # Probes
//
// /healthz and /v1/healthz answer the V4 body (arm, version, flags, leader)
// or, WithV2, the V2 one; SetHealth breaks them, SetDegradedFlags fills
// degraded_experimental_flags. /readyz answers ready, or draining after
// SetReady(false). GET /v1/auth/whoami needs a valid key in key mode and
// reports WithRole's role. V2 has neither /readyz nor whoami.
//
// # What the fake saw
//
// Requests returns every request (headers and body raw, plus the decoded
// chat fields, the session, whether the client went away mid-turn);
// MessagesFor, Received, Decisions, PendingGate and
// ConcurrentTurnViolations answer the usual questions; Wait,
// WaitForRequests and WaitForDisconnect block (bounded by a context) until
// the log shows something.
//
// # In-process use
//
// NewUnstartedServer with Handler (mount it on your own listener) or
// Transport (an http.RoundTripper with no socket) serves the same fake
// without listening; Close still ends every running turn.
package kubeqtest
