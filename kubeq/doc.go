// Package kubeq is the KubeIntellect client: one turn of
// POST /v1/chat/completions read as typed events, exactly as the kube-q CLI
// speaks it (see ../shared/kubeintellect-protocol.md). It knows HTTP and SSE
// and nothing of MCP.
//
// The choices a caller should know:
//
//   - Only "data: [DONE]" ends a turn. finish_reason "stop" does not (a
//     mid-turn "**Error:**" chunk carries one and the turn goes on), and EOF
//     without [DONE] is an *InterruptedError.
//   - Timeout (WithTimeout, default 120 s) bounds silence, not the turn: the
//     connection and response header must arrive within it, and then every
//     gap between two reads of the stream. The 15 s heartbeats keep a long
//     turn alive; a stream silent for longer fails with ErrIdleTimeout. Bound
//     a whole turn with the context.
//   - Transport failures are retried on the delay schedule (default 1 s, 3 s,
//     5 s: four attempts) only while the attempt has received no complete
//     frame. Once the stream.start handshake has arrived the server is running
//     the turn, and posting again would run it twice, so any later break is
//     reported, never replayed. HTTP status errors are never retried.
//   - A malformed frame is skipped and counted (End.DroppedFrames), as is a
//     well-formed frame of unknown kind (End.UnknownFrames); unknown keys are
//     ignored. Frames above 8 MiB are dropped; 1 MB frames parse.
//   - A fatal in-band error arrives as an Error event with Fatal set; Query
//     reads on to [DONE] and returns *FatalError with the Result.
//   - The API key and any URL password never appear in errors, logs or
//     URL().
package kubeq
