#!/usr/bin/env python3
"""Writes the *.sse fixtures byte-for-byte the way the KubeIntellect server
puts them on the wire: "data: " + json.dumps(obj) + "\n\n" (default
separators ", " / ": ", ensure_ascii escapes), ": heartbeat\n\n" keep-alives
and "data: [DONE]\n\n" (kubeintellect-protocol.md sections 2 and 7).
Run it from this directory; the goldens are then regenerated with
UPDATE_GOLDEN=1 go test ./kubeq/ and reviewed by hand."""

import json

SID = "mcp-5c1d2e"
DONE = "data: [DONE]\n\n"
HEARTBEAT = ": heartbeat\n\n"


def frame(obj):
    return "data: " + json.dumps(obj) + "\n\n"


def start(sid=SID):
    return frame({"protocol_version": "1.0", "object": "stream.start", "session_id": sid})


class Turn:
    """One completion id per turn, as the server does."""

    def __init__(self, cid, created):
        self.cid, self.created = cid, created

    def _chunk(self, t):
        return {"id": self.cid, "object": "chat.completion.chunk", "created": self.created + t,
                "model": "kubeintellect"}

    def ki(self, t, event):
        c = self._chunk(t)
        c["ki_event"] = event
        c["choices"] = []
        return frame(c)

    def content(self, t, text, finish=None, **hitl):
        choice = {"index": 0, "delta": {"content": text, "role": "assistant"}, "finish_reason": finish}
        choice.update(hitl)
        c = self._chunk(t)
        c["choices"] = [choice]
        return frame(c)

    def stop(self, t):
        c = self._chunk(t)
        c["choices"] = [{"index": 0, "delta": {}, "finish_reason": "stop"}]
        return frame(c)

    def status(self, t, phase, message):
        return self.ki(t, {"type": "status", "phase": phase, "message": message})

    def tool_call(self, t, tool, message):
        return self.ki(t, {"type": "tool_call", "tool": tool, "message": message})

    def tool_result(self, t, tool, output):
        return self.ki(t, {"type": "tool_result", "tool": tool, "output": output})

    def usage(self, t, p, c, calls, **extra):
        ev = {"type": "usage", "prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c, "llm_calls": calls}
        ev.update(extra)
        return self.ki(t, ev)


def hitl_prompt(risk, command, yaml=None):
    # Mirrors _serialise_event's hitl_request branch.
    emoji = "\U0001F534" if risk == "high" else "\U0001F7E1"
    msg = (f"\n\n---\n{emoji} **Approval Required** \u2014 risk level: `{risk.upper()}`\n\n"
           f"**Command:**\n```\n{command}\n```\n")
    if yaml:
        preview = yaml if len(yaml) <= 3000 else yaml[:3000] + "\n... [truncated]"
        msg += f"\n**YAML to apply:**\n```yaml\n{preview}\n```\n"
    msg += "\n**Type `yes` or `/approve` to proceed, or `no` / `/deny` to cancel.**"
    return msg


LOADING = [("loading", "Loading conversation context\u2026"), ("snapshot", "Fetching cluster snapshot\u2026"),
           ("analyzing", "Analyzing your request\u2026")]
GET_PODS_OUT = ("NAME                      READY   STATUS             RESTARTS   AGE\n"
                "checkout-7d4b9cf6-xk2lp   0/1     CrashLoopBackOff   7          12m")
POD = "checkout-7d4b9cf6-xk2lp"
DELETE = f"kubectl delete pod {POD} -n shop"


def plain_answer():
    t = Turn("chatcmpl-5e0c2a91b7d3", 1767225600)
    s = start()
    s += t.status(0, *LOADING[0]) + t.status(0, *LOADING[1]) + t.status(1, *LOADING[2])
    s += t.tool_call(4, "run_kubectl", "Running: kubectl get pods -n shop")
    s += t.tool_result(5, "run_kubectl", GET_PODS_OUT)
    s += t.tool_call(7, "run_kubectl", f"Running: kubectl logs {POD} -n shop --previous")
    s += t.tool_result(8, "run_kubectl", "FATAL: DB_URL is not set")
    s += t.ki(12, {"type": "plan", "steps": [{"description": "Check pod status in shop", "status": "done"},
                                              {"description": "Read previous container logs", "status": "done"}]})
    s += HEARTBEAT
    s += t.content(29, "**Root cause:** `checkout` exits at start-up because ")
    s += t.content(29, "`DB_URL` is not set.")
    s += t.usage(30, 14210, 655, 4)
    s += t.stop(30) + DONE
    return s


def hitl_gate():
    t = Turn("chatcmpl-91aa0c3e6f27", 1767225700)
    s = start() + t.status(0, *LOADING[0]) + t.status(0, *LOADING[1]) + t.status(1, *LOADING[2])
    s += t.tool_call(4, "run_kubectl", "Running: " + DELETE)
    s += t.content(4, hitl_prompt("high", DELETE), hitl_required=True,
                   action_id="3f2b8e0a-6c1d-4f7e-9a55-0d2c7b1e4a90", risk_level="high", human_summary=DELETE)
    s += t.usage(4, 9120, 88, 2) + t.stop(4) + DONE
    return s


CONFIGMAP = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: checkout-env\n  namespace: shop\n"
             "data:\n  DB_URL: postgres://db.shop:5432/checkout\n  GREETING: \"Gr\u00fc\u00dfe \u2014 \u2603\"\n")


def hitl_gate_yaml():
    t = Turn("chatcmpl-0b7c55e1d9a4", 1767225800)
    cmd = "kubectl apply -f - -n shop"
    s = start() + t.status(0, *LOADING[2])
    s += t.tool_call(3, "run_kubectl", "Running: " + cmd)
    s += t.content(3, "I will create the missing config map.")
    s += t.content(3, hitl_prompt("medium", cmd, CONFIGMAP.rstrip("\n")), hitl_required=True,
                   action_id="9d0c7f5e-2a41-4b8e-8f3c-6e1a2b3c4d5e", risk_level="medium", human_summary=cmd)
    s += t.usage(3, 5012, 140, 1) + t.stop(3) + DONE
    return s


def approve_continuation():
    t = Turn("chatcmpl-2c4e6a8b0d1f", 1767225900)
    s = start() + t.status(0, *LOADING[2])
    s += t.tool_call(1, "run_kubectl", "Running: " + DELETE)
    s += t.tool_result(2, "run_kubectl", f'pod "{POD}" deleted')
    s += t.tool_call(4, "run_kubectl", "Running: kubectl get pods -n shop -l app=checkout")
    s += t.tool_result(5, "run_kubectl", "NAME                      READY   STATUS    RESTARTS   AGE\n"
                                         "checkout-7d4b9cf6-q8m2z   1/1     Running   0          4s")
    s += t.content(7, "Deleted `" + POD + "`; ")
    s += t.content(7, "the replacement `checkout-7d4b9cf6-q8m2z` is Running \u2714.")
    s += t.usage(7, 10422, 61, 2) + t.stop(7) + DONE
    return s


def deny_continuation():
    t = Turn("chatcmpl-3d5f7b9c1e2a", 1767226000)
    s = start() + t.status(0, *LOADING[2])
    s += t.tool_result(1, "run_kubectl", "Action cancelled by user.")
    s += t.content(2, "Understood \u2014 I did not delete the pod. ")
    s += t.content(2, "It will keep crash-looping until `DB_URL` is set.")
    s += t.usage(2, 9301, 37, 1) + t.stop(2) + DONE
    return s


def unrelated_after_gate():
    # V4 strict: an unrecognised reply to a pending gate cancels it.
    t = Turn("chatcmpl-4e6a8c0d2f3b", 1767226100)
    s = start() + t.status(0, *LOADING[2])
    s += t.tool_result(1, "run_kubectl", "Action cancelled by user.")
    s += t.content(2, "I cancelled the pending deletion because your reply was not an approval. ")
    s += t.content(2, "Ask again if you still want it.")
    s += t.usage(2, 9355, 29, 1) + t.stop(2) + DONE
    return s


def mid_turn_error():
    t = Turn("chatcmpl-6a8c0e2b4d5f", 1767226200)
    s = start() + t.status(0, *LOADING[0]) + t.status(1, *LOADING[2])
    s += t.tool_call(2, "query_prometheus", "Calling query_prometheus")
    s += t.tool_result(3, "query_prometheus", "[]")
    s += t.content(5, "\n\n**Error:** LLM rate limit hit \u2014 please try again in a moment.", finish="stop")
    s += t.usage(5, 3120, 0, 1) + t.stop(5) + DONE
    return s


def fatal_error():
    t = Turn("chatcmpl-7b9d1f3a5c6e", 1767226300)
    s = start() + t.status(0, *LOADING[0])
    s += t.content(1, "Looking at the ")
    s += t.ki(2, {"type": "error", "fatal": True, "message": "checkpoint store unavailable: connection refused"})
    s += t.content(2, "\n\n[Error: checkpoint store unavailable: connection refused]", finish="stop")
    s += DONE
    return s


def heartbeat_wait():
    t = Turn("chatcmpl-8c0e2a4b6d7f", 1767226400)
    s = start() + t.status(0, *LOADING[2])
    s += t.tool_call(2, "run_kubectl", "Running: kubectl top pods -A")
    s += HEARTBEAT + HEARTBEAT + HEARTBEAT
    s += t.tool_result(48, "run_kubectl", "NAMESPACE   NAME   CPU(cores)   MEMORY(bytes)\nshop   checkout-7d4b9cf6-q8m2z   3m   41Mi")
    s += HEARTBEAT
    s += t.content(64, "Nothing is starved for CPU.")
    s += t.usage(64, 2210, 19, 1) + t.stop(64) + DONE
    return s


def truncated():
    t = Turn("chatcmpl-9d1f3b5c7e8a", 1767226500)
    return (start() + t.status(0, *LOADING[2]) + t.tool_call(1, "run_kubectl", "Running: kubectl get nodes")
            + t.content(3, "All three nodes are "))


def truncated_mid_frame():
    t = Turn("chatcmpl-0e2a4c6d8f9b", 1767226600)
    cut = t.content(3, "Ready except worker-2")
    return start() + t.status(0, *LOADING[2]) + t.content(2, "All nodes are ") + cut[:60]


def malformed_frame():
    t = Turn("chatcmpl-1f3b5d7e9a0c", 1767226700)
    bad = t.content(1, "this frame was cut in half by a broken proxy")
    s = start() + t.status(0, *LOADING[2])
    s += bad[:70] + "\n\n"
    s += "data: not json at all\n\n"
    s += t.content(2, "Both replicas are healthy.")
    s += t.usage(2, 1200, 7, 1) + t.stop(2) + DONE
    return s


def replay_history():
    # GET /v1/events/replay/{sid}: raw wire.py dicts, two turns of one session.
    def ev(typ, ts, **kw):
        d = {"type": typ}
        d.update(kw)
        d["session_id"] = SID
        d["ts"] = ts
        return frame(d)
    s = frame({"type": "replay_meta", "session_id": SID, "records": 11, "durable": False})
    s += ev("status", 1767225701.27, phase="analyzing", message="Analyzing your request\u2026")
    s += ev("tool_call", 1767225704.02, tool="run_kubectl", command=DELETE)
    s += ev("tool_call", 1767225704.31, tool="query_loki", command=None)
    s += ev("hitl_request", 1767225704.5, action_id="3f2b8e0a-6c1d-4f7e-9a55-0d2c7b1e4a90",
            risk_level="high", command=DELETE, stdin_yaml=None)
    s += ev("final", 1767225704.61)
    s += ev("tool_result", 1767225902.8, tool="run_kubectl", output=f'pod "{POD}" deleted')
    s += ev("plan", 1767225903.0, steps=[{"description": "Delete the crashing pod", "status": "done"}])
    s += ev("token", 1767225907.4, content="Deleted \U0001F5D1\uFE0F.")
    s += ev("error", 1767225907.9, error="verification query timed out")
    s += ev("usage", 1767225908.0, prompt_tokens=10422, completion_tokens=61, total_tokens=10483, llm_calls=2)
    s += ev("final", 1767225908.1)
    return s + DONE


def nested_shapes():
    # The events.py typed view: {type, data:{...}} with the client's names.
    def ev(typ, data):
        return frame({"event_id": "", "session_id": SID, "conversation_id": "", "timestamp": "",
                      "type": typ, "data": data})
    s = ev("status", {"phase": "investigating", "message": "Investigating checkout in shop\u2026"})
    s += ev("tool_call", {"tool_name": "run_kubectl", "args": {"command": "kubectl get pods -n shop"},
                          "call_id": "c1", "dry_run": False, "tool": "", "command": "kubectl get pods -n shop",
                          "message": ""})
    s += ev("tool_result", {"call_id": "c1", "ok": True, "summary": "3 pods, 1 crash-looping",
                            "truncated": False, "tool": "run_kubectl"})
    s += ev("plan", {"steps": [{"description": "Check pods", "status": "in_progress"},
                               {"description": "Read logs", "status": "pending"}]})
    s += ev("token", {"content": "One pod is crash-looping.", "role": "assistant"})
    s += ev("hitl_request", {"action": "kubectl rollout restart deploy/checkout -n shop", "risk": "medium",
                             "diff": "spec:\n  replicas: 2", "approval_id": "a-77"})
    s += ev("usage", {"prompt_tokens": 800, "completion_tokens": 40, "total_tokens": 840, "llm_calls": 1,
                      "model": ""})
    s += ev("error", {"code": "upstream", "message": "metrics backend slow", "retryable": True})
    s += ev("final", {"content": "", "usage": None, "elapsed_ms": 0})
    return s + DONE


def crlf():
    t = Turn("chatcmpl-2a4c6e8f0b1d", 1767226800)
    s = start() + t.status(0, *LOADING[2]) + HEARTBEAT + t.content(1, "Line one\nline two.")
    s += t.usage(1, 100, 5, 1) + t.stop(1) + DONE
    return s.replace("\n\n", "\r\n\r\n")


def v2_no_usage():
    # A V2 server: no usage frame at all, so usage is unknown (not zero).
    t = Turn("chatcmpl-3b5d7f9a1c2e", 1767226900)
    s = start() + t.status(0, *LOADING[2]) + t.tool_call(1, "run_helm", "Calling run_helm")
    s += t.tool_result(2, "run_helm", "NAME\tNAMESPACE\tREVISION\ncheckout\tshop\t12")
    s += t.content(3, "Release `checkout` is at revision 12.") + t.stop(3) + DONE
    return s


def usage_shapes():
    t = Turn("chatcmpl-4c6e8a0b2d3f", 1767227000)
    s = start()
    s += t.usage(0, 10, 2, 1, session_id=SID, ts=1767227000.5)  # built through wire.UsageEvent
    s += t.ki(0, {"type": "usage", "usage": {"prompt_tokens": 20, "completion_tokens": 4,
                                             "total_tokens": 24, "llm_calls": 2}})
    s += frame({"id": t.cid, "object": "chat.completion.chunk", "created": t.created, "model": "kubeintellect",
                "choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 6, "total_tokens": 36}})
    s += frame({"id": t.cid, "object": "chat.completion.chunk", "created": t.created,
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "llm_calls": 0}})
    return s + t.stop(0) + DONE


def unknown_frames():
    t = Turn("chatcmpl-5d7f9b1c3e4a", 1767227100)
    s = start() + t.ki(0, {"type": "thinking", "message": "hmm"})
    s += frame({"object": "something.else", "id": "x"})
    s += frame({"type": "mystery", "payload": 1})
    s += frame({"choices": []})
    s += "event: ping\nid: 7\nretry: 1000\ndata: " + json.dumps(
        {"id": t.cid, "object": "chat.completion.chunk", "created": t.created, "model": "kubeintellect",
         "choices": [{"index": 0, "delta": {"content": "Fine.", "role": "assistant"}, "finish_reason": None,
                      "logprobs": None}], "system_fingerprint": "fp_1"}) + "\n\n"
    s += "event: ignored\n\n"
    s += t.ki(0, {"type": "status", "phase": "dreaming", "message": "new phase", "extra": {"k": [1, 2]}})
    return s + t.stop(0) + DONE


def multiline_data():
    t = Turn("chatcmpl-6e8a0c2d4f5b", 1767227200)
    s = start()
    # One JSON object over three data: lines (joined with "\n", still valid JSON).
    s += 'data: {"id": "%s", "object": "chat.completion.chunk",\ndata: "created": %d, "model": "kubeintellect",\n' % (
        t.cid, t.created)
    s += 'data: "ki_event": {"type": "status", "phase": "analyzing", "message": "multi"}, "choices": []}\n\n'
    # A comment inside a data frame, and "data:" without the optional space.
    s += ': still here\n' + "data:" + json.dumps({"id": t.cid, "object": "chat.completion.chunk", "created": t.created,
                                                   "model": "kubeintellect", "choices": [
            {"index": 0, "delta": {"content": "a", "role": "assistant"}, "finish_reason": None}]}) + "\n\n"
    # Lone CR line endings.
    s += ("data: " + json.dumps({"id": t.cid, "object": "chat.completion.chunk", "created": t.created,
                                 "model": "kubeintellect", "choices": [
            {"index": 0, "delta": {"content": "b", "role": "assistant"}, "finish_reason": None}]}) + "\r\r")
    s += "\n\n\n"  # stray blank lines between frames
    return s + t.stop(0) + DONE


STREAMS = [plain_answer, hitl_gate, hitl_gate_yaml, approve_continuation, deny_continuation,
           unrelated_after_gate, mid_turn_error, fatal_error, heartbeat_wait, truncated, truncated_mid_frame,
           malformed_frame, replay_history, nested_shapes, crlf, v2_no_usage, usage_shapes, unknown_frames,
           multiline_data]

if __name__ == "__main__":
    for fn in STREAMS:
        with open(fn.__name__ + ".sse", "w", encoding="ascii", newline="") as f:
            f.write(fn())
        print("wrote", fn.__name__ + ".sse")
