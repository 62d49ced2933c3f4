package approval

import (
	"context"
	"errors"
	"time"
)

// Record is what the ledger knows of a gate that is or may be pending on a
// conversation. Every record has a deadline: after it, the sweeper denies.
type Record struct {
	Gate  Gate   `json:"g"`
	Nonce string `json:"n,omitempty"` // of the sealed state a 2026-era client holds; "" when none

	// Blind: a gate may or may not be pending (an answer whose fate is
	// unknown, an older backend without history); nothing is known of it.
	Blind bool `json:"b,omitempty"`
	// Sealed: the human can still answer through any replica that shares
	// the store and the state key (a 2026-era sealed form). A replica that
	// stops leaves such a record to the others.
	Sealed bool `json:"s,omitempty"`
	// Unasked: raised by a turn that ran on with no call watching it; the
	// next call on the conversation asks the human (in the process that
	// ran the turn, which holds the answer so far), else it is denied.
	Unasked bool `json:"q,omitempty"`

	User string `json:"u,omitempty"` // body "user" of the conversation's turns
	// Who asked, for the audit record of a deny sent later on its behalf.
	ClientName    string `json:"cn,omitempty"`
	ClientVersion string `json:"cv,omitempty"`
	Transport     string `json:"t,omitempty"`

	Owner    string    `json:"o,omitempty"` // the replica that wrote it
	Expires  time.Time `json:"e"`           // the human's time is up, or the next retry of a failed deny is due
	Attempts int       `json:"at,omitempty"`
}

// ErrNoDeadline: a record must say when it is due.
var ErrNoDeadline = errors.New("approval record has no deadline")

// ErrLeaseLost: the lease under which a record was to be changed is no
// longer held (it expired, or the store lost it).
var ErrLeaseLost = errors.New("conversation lease lost")

// ErrStore wraps every failure to reach or use the store.
var ErrStore = errors.New("approval store unavailable")

// NonceState is what a consumed nonce was used for.
type NonceState int

const (
	NonceFresh    NonceState = iota // first use: the caller may act on it
	NonceUsed                       // answered already, or its gate was denied
	NonceTimedOut                   // its gate was denied because its time ran out
)

// BlobKind names a namespace of blobs: a key of one kind never reads or
// overwrites a blob of another, whatever the key (a conversation id comes
// from the model or the backend).
type BlobKind string

// The kinds of blob replicas share.
const (
	BlobRun  BlobKind = "mirror" // a detached run's status and answer, by conversation
	BlobTask BlobKind = "task"   // a task of the Tasks extension and its mail, by task id
)

// Store holds what replicas must share. Every method is bounded by ctx.
// Implementations: memoryStore (one process) and redisStore.
type Store interface {
	// TryLease takes conv's lease for owner until ttl from now, when free.
	TryLease(ctx context.Context, conv, owner string, ttl time.Duration) (bool, error)
	// RenewLease extends owner's lease; false when owner no longer holds it.
	RenewLease(ctx context.Context, conv, owner string, ttl time.Duration) (bool, error)
	// ReleaseLease frees conv's lease when owner holds it.
	ReleaseLease(ctx context.Context, conv, owner string) error

	// Get reads conv's record, nil when none.
	Get(ctx context.Context, conv string) (*Record, error)
	// Put writes conv's record while owner holds its lease (ErrLeaseLost
	// otherwise), in one step with that check.
	Put(ctx context.Context, conv, owner string, r *Record) error
	// Delete removes conv's record while owner holds its lease.
	Delete(ctx context.Context, conv, owner string) error

	// ConsumeNonce uses up nonce until keep and returns its state before,
	// and conv's record, read in the same step.
	ConsumeNonce(ctx context.Context, conv, nonce string, keep time.Time) (NonceState, *Record, error)
	// SpendNonce marks nonce used (timedOut: because its time ran out),
	// whatever it was before.
	SpendNonce(ctx context.Context, nonce string, keep time.Time, timedOut bool) error

	// Due lists conversations whose record is due at now.
	Due(ctx context.Context, now time.Time) ([]string, error)
	// Conversations lists every conversation with a record.
	Conversations(ctx context.Context) ([]string, error)

	// SetBlob keeps blob under (kind, key) for ttl, for other replicas to
	// read; GetBlob reads it, nil when none. Kinds are separate namespaces.
	SetBlob(ctx context.Context, kind BlobKind, key string, blob []byte, ttl time.Duration) error
	GetBlob(ctx context.Context, kind BlobKind, key string) ([]byte, error)
	// GetBlobs reads several keys of kind at once (one round trip, one
	// instant): the i-th blob is keys[i]'s, nil when none.
	GetBlobs(ctx context.Context, kind BlobKind, keys []string) ([][]byte, error)

	// Ping checks the store is reachable.
	Ping(ctx context.Context) error
	// Describe names the store for people, without any password.
	Describe() string
	Close() error
}
