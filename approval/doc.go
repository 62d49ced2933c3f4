// Package approval owns what makes an approval gate safe across calls,
// replicas and restarts: the Gate and its confirmation, the Verdict a
// human's answer earns, the Outcome of a send, and the Ledger that keeps,
// per conversation, the turn lease, the gate record and the used nonces,
// in one Store (memory for one process, Redis for replicas).
//
// # Rules the types carry
//
//   - A Gate's confirmation is computed once, by NewGate: every risk but a
//     known lower one (low, medium) needs it, an empty or unknown risk
//     included. ConfirmText names the target, every target of a command
//     that names several ("web-1 web-2"), or namespace/all for a bulk
//     change (--all, -l, -f, -k, --field-selector: "prod/all").
//   - Only Judge builds a Verdict that approves, and only for the gate it
//     judged (Verdict.Approves(g)): an accepted form whose content is
//     exactly the form's string fields, each at most once, with decision
//     approve and the confirmation typed. Anything ambiguous denies.
//   - Classify is the one reading of a send's error: Delivered,
//     NotDelivered or Unknown.
//   - A Record can be read or changed only through the Held of the
//     conversation's lease; the store refuses a write by anyone else
//     (one step with the check, a Lua script on Redis), and every record
//     has a deadline (ErrNoDeadline), after which a sweeper denies it.
//   - A nonce is consumed in the same step as the record is read
//     (Held.Consume), so two replicas never both act on one form.
//   - A lease expires unless renewed (its holder renews it while the turn
//     runs): a replica that dies frees its conversations by itself.
//
// # One conversation
//
// The package server drives the sends (question, "approve", "deny") and
// leaves these records behind; the state of a conversation is its record:
//
//	              question sent (lease held)         gate raised
//	no record ───────────────────────────▶ turn ───────────────────▶ Pending{gate, nonce?, deadline}
//	   ▲                                     │ reply ends, no gate           │
//	   │◀────────────────────────────────────┘                               │ Held.Consume(nonce):
//	   │                                                                     │ human's Verdict for this gate
//	   │                                                                     ▼
//	   │◀───── reply ends without a gate ─────────────────────────── approve (at most once,
//	   │                                                              history shows the same gate)
//	   │                                                                     │ outcome Unknown
//	   │   deny Delivered                                                    ▼
//	   │◀───────────────── deny ◀── any other verdict, deadline,      Blind{deadline}
//	   │                     │       shutdown (memory store), reconcile      │
//	   │                     │ outcome not Delivered                         │
//	   │                     ▼                                               │
//	   └── reconcile ── Pending{gate, deadline = now + backoff} ◀────────────┘
//	       (deny first, before any question; the sweeper when due)
//
// A reply to a deny that raises another gate is denied too, at most 5 in a
// row; a gate still open after that stays recorded, due after a backoff. A
// gate raised in a reply whose stream then broke is recorded, never
// dropped. A Blind record asks the backend's history first: nothing
// pending there means no deny is sent.
//
// With a shared store a replica that stops leaves its records to the
// others (a sealed 2026-era form can still be answered through them, and
// their sweepers deny what falls due); with the memory store it denies
// every record before it exits.
package approval
