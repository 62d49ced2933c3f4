package approval

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/internal/redistest"
)

// The contract every store keeps, run against the memory store and a real
// redis-server. newStore returns a fresh store each call, all sharing one
// backing state (for redis: the same server and prefix), as replicas do.
func runContract(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	t.Run("MirrorReadBackAndExpires", func(t *testing.T) {
		st := newStore(t)
		ctx := context.Background()
		got, err := st.GetBlob(ctx, BlobRun, "c-mirror")
		require.NoError(t, err)
		assert.Nil(t, got)
		require.NoError(t, st.SetBlob(ctx, BlobRun, "c-mirror", []byte(`{"a":1}`), 300*time.Millisecond))
		got, err = st.GetBlob(ctx, BlobRun, "c-mirror")
		require.NoError(t, err)
		assert.Equal(t, `{"a":1}`, string(got))
		got, err = st.GetBlob(ctx, BlobTask, "c-mirror")
		require.NoError(t, err)
		assert.Nil(t, got, "each kind is its own namespace")
		require.NoError(t, st.SetBlob(ctx, BlobTask, "c-mirror", []byte(`{"t":2}`), time.Minute))
		got, err = st.GetBlob(ctx, BlobRun, "c-mirror")
		require.NoError(t, err)
		assert.Equal(t, `{"a":1}`, string(got), "a blob of another kind does not overwrite it")
		require.Eventually(t, func() bool {
			got, err := st.GetBlob(ctx, BlobRun, "c-mirror")
			return err == nil && got == nil
		}, 5*time.Second, 20*time.Millisecond, "gone after its TTL")
	})
	t.Run("BlobsReadTogether", func(t *testing.T) {
		st := newStore(t)
		require.NoError(t, st.SetBlob(ctx, BlobTask, "t1", []byte("record"), time.Minute))
		require.NoError(t, st.SetBlob(ctx, BlobTask, "t1/cancel", []byte("1"), time.Minute))
		require.NoError(t, st.SetBlob(ctx, BlobRun, "t1/failed", []byte("other kind"), time.Minute))
		got, err := st.GetBlobs(ctx, BlobTask, []string{"t1/failed", "t1", "t1/none", "t1/cancel"})
		require.NoError(t, err)
		assert.Equal(t, [][]byte{nil, []byte("record"), nil, []byte("1")}, got,
			"in the order asked, nil where none, each kind its own namespace")
		got, err = st.GetBlobs(ctx, BlobTask, nil)
		require.NoError(t, err)
		assert.Empty(t, got)
	})
	t.Run("LeaseIsExclusive", func(t *testing.T) {
		s := newStore(t)
		ok, err := s.TryLease(ctx, "c1", "a", time.Minute)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = s.TryLease(ctx, "c1", "b", time.Minute)
		require.NoError(t, err)
		assert.False(t, ok, "a second holder while the first holds it")
		require.NoError(t, s.ReleaseLease(ctx, "c1", "b"))
		ok, _ = s.TryLease(ctx, "c1", "b", time.Minute)
		assert.False(t, ok, "a release by a non-holder frees nothing")
		require.NoError(t, s.ReleaseLease(ctx, "c1", "a"))
		ok, _ = s.TryLease(ctx, "c1", "b", time.Minute)
		assert.True(t, ok, "free after the holder's release")
	})
	t.Run("LeaseExpiresUnlessRenewed", func(t *testing.T) {
		s := newStore(t)
		const ttl = 300 * time.Millisecond
		ok, _ := s.TryLease(ctx, "c2", "a", ttl)
		require.True(t, ok)
		renewed, err := s.RenewLease(ctx, "c2", "a", 3*ttl)
		require.NoError(t, err)
		require.True(t, renewed)
		time.Sleep(ttl + 100*time.Millisecond) // past the first ttl, within the renewed one
		ok, _ = s.TryLease(ctx, "c2", "b", ttl)
		assert.False(t, ok, "renewed lease still held")
		require.Eventually(t, func() bool {
			ok, _ := s.TryLease(ctx, "c2", "b", time.Minute)
			return ok
		}, 20*ttl, 20*time.Millisecond, "an unrenewed lease expires")
		renewed, _ = s.RenewLease(ctx, "c2", "a", ttl)
		assert.False(t, renewed, "the old holder cannot renew a lease another holds")
	})
	t.Run("RecordOnlyUnderLease", func(t *testing.T) {
		s := newStore(t)
		rec := &Record{Gate: Gate{ApprovalID: "g1", Action: "kubectl delete pod web-1", Risk: "high", Confirm: "web-1"},
			Nonce: "n1", Sealed: true, User: "u", ClientName: "cl", Expires: time.Now().Add(time.Hour).Round(time.Millisecond)}
		assert.ErrorIs(t, s.Put(ctx, "c3", "a", rec), ErrLeaseLost, "write without the lease")
		ok, _ := s.TryLease(ctx, "c3", "a", time.Minute)
		require.True(t, ok)
		assert.ErrorIs(t, s.Put(ctx, "c3", "a", &Record{Gate: rec.Gate}), ErrNoDeadline)
		assert.ErrorIs(t, s.Put(ctx, "c3", "b", rec), ErrLeaseLost, "write by a non-holder")
		require.NoError(t, s.Put(ctx, "c3", "a", rec))
		got, err := newStore(t).Get(ctx, "c3") // another replica reads it
		require.NoError(t, err)
		require.NotNil(t, got)
		assert.Equal(t, rec.Gate, got.Gate)
		assert.True(t, rec.Expires.Equal(got.Expires))
		assert.Equal(t, "n1", got.Nonce)
		assert.ErrorIs(t, s.Delete(ctx, "c3", "b"), ErrLeaseLost)
		require.NoError(t, s.Delete(ctx, "c3", "a"))
		got, err = s.Get(ctx, "c3")
		require.NoError(t, err)
		assert.Nil(t, got)
	})
	t.Run("DueAndConversations", func(t *testing.T) {
		s := newStore(t)
		now := time.Now()
		for i, d := range []time.Duration{-time.Second, time.Hour} {
			conv := fmt.Sprintf("due%d", i)
			ok, _ := s.TryLease(ctx, conv, "a", time.Minute)
			require.True(t, ok)
			require.NoError(t, s.Put(ctx, conv, "a", &Record{Blind: true, Expires: now.Add(d)}))
		}
		due, err := s.Due(ctx, now)
		require.NoError(t, err)
		assert.Contains(t, due, "due0")
		assert.NotContains(t, due, "due1")
		all, err := s.Conversations(ctx)
		require.NoError(t, err)
		assert.Subset(t, all, []string{"due0", "due1"})
	})
	t.Run("NonceUsedOnceUnderConcurrency", func(t *testing.T) {
		stores := []Store{newStore(t), newStore(t), newStore(t)}
		var fresh atomic.Int32
		var wg sync.WaitGroup
		for i := range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, _, err := stores[i%3].ConsumeNonce(ctx, "cn", "nonce-x", time.Now().Add(time.Minute))
				if assert.NoError(t, err) && st == NonceFresh {
					fresh.Add(1)
				}
			}()
		}
		wg.Wait()
		assert.Equal(t, int32(1), fresh.Load(), "exactly one use of a nonce")
		s := stores[0]
		require.NoError(t, s.SpendNonce(ctx, "nonce-t", time.Now().Add(time.Minute), true))
		st, _, err := s.ConsumeNonce(ctx, "cn", "nonce-t", time.Now().Add(time.Minute))
		require.NoError(t, err)
		assert.Equal(t, NonceTimedOut, st)
	})
	t.Run("NonceReadsRecordInSameStep", func(t *testing.T) {
		s := newStore(t)
		ok, _ := s.TryLease(ctx, "cr", "a", time.Minute)
		require.True(t, ok)
		require.NoError(t, s.Put(ctx, "cr", "a", &Record{Nonce: "n-cr", Expires: time.Now().Add(time.Hour)}))
		st, rec, err := s.ConsumeNonce(ctx, "cr", "n-cr", time.Now().Add(time.Minute))
		require.NoError(t, err)
		assert.Equal(t, NonceFresh, st)
		require.NotNil(t, rec)
		assert.Equal(t, "n-cr", rec.Nonce)
	})
	t.Run("LedgerSerialisesReplicas", func(t *testing.T) {
		a, b := NewLedger(newStore(t), Options{Poll: 10 * time.Millisecond}), NewLedger(newStore(t), Options{Poll: 10 * time.Millisecond})
		ha, err := a.Acquire(ctx, "cl")
		require.NoError(t, err)
		got := make(chan *Held)
		go func() {
			hb, err := b.Acquire(ctx, "cl")
			assert.NoError(t, err)
			got <- hb
		}()
		select {
		case <-got:
			t.Fatal("a second replica acquired a held conversation")
		case <-time.After(200 * time.Millisecond):
		}
		require.NoError(t, ha.Set(ctx, &Record{Blind: true, Expires: time.Now().Add(time.Hour)}))
		ha.Release()
		hb := <-got
		require.NotNil(t, hb)
		rec, err := hb.Pending(ctx)
		require.NoError(t, err)
		require.NotNil(t, rec, "the record written by one replica is read by the next")
		assert.Equal(t, a.Replica(), rec.Owner)
		require.NoError(t, hb.Clear(ctx))
		hb.Release()
		assert.ErrorIs(t, ha.Set(ctx, &Record{Blind: true, Expires: time.Now().Add(time.Hour)}), ErrLeaseLost,
			"a released lease writes nothing")
	})
	t.Run("SweeperClaimExactlyOnce", func(t *testing.T) {
		var claims atomic.Int32
		var wg sync.WaitGroup
		for range 10 {
			l := NewLedger(newStore(t), Options{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				h, err := l.TryAcquire(ctx, "sweep")
				if assert.NoError(t, err) && h != nil {
					claims.Add(1)
					time.Sleep(50 * time.Millisecond) // hold it while the others try
				}
			}()
		}
		wg.Wait()
		assert.Equal(t, int32(1), claims.Load())
	})
	t.Run("HeldLeaseRenewedPastTTL", func(t *testing.T) {
		const ttl = 300 * time.Millisecond
		a := NewLedger(newStore(t), Options{LeaseTTL: ttl})
		b := NewLedger(newStore(t), Options{LeaseTTL: ttl})
		h, err := a.Acquire(ctx, "long")
		require.NoError(t, err)
		defer h.Release()
		time.Sleep(3 * ttl) // a long turn: the renewal keeps it
		other, err := b.TryAcquire(ctx, "long")
		require.NoError(t, err)
		assert.Nil(t, other, "a held lease is renewed while its turn runs")
		assert.False(t, h.Lost())
	})
}

func TestContractMemory(t *testing.T) {
	shared := NewMemoryStore()
	runContract(t, func(*testing.T) Store { return shared })
}

func TestContractRedis(t *testing.T) {
	srv := redistest.Start(t)
	runContract(t, func(t *testing.T) Store {
		s, err := NewRedisStore(srv.URL(0), "test:")
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// Records outlive the replica that wrote them: a new client of the same
// Redis reads them, and its sweeper finds them due.
func TestRedisRecordsSurviveReplicaRestart(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	s1, err := NewRedisStore(srv.URL(0), "p:")
	require.NoError(t, err)
	l1 := NewLedger(s1, Options{})
	h, err := l1.Acquire(ctx, "conv")
	require.NoError(t, err)
	require.NoError(t, h.Set(ctx, &Record{Gate: Gate{ApprovalID: "g"}, Sealed: true, Expires: time.Now()}))
	h.Release()
	require.NoError(t, l1.Close())

	s2, err := NewRedisStore(srv.URL(0), "p:")
	require.NoError(t, err)
	defer s2.Close()
	l2 := NewLedger(s2, Options{})
	due, err := l2.Due(ctx, time.Now())
	require.NoError(t, err)
	assert.Equal(t, []string{"conv"}, due)
}

// A store that cannot be reached fails fast, as ErrStore, and the error
// never carries the password.
func TestRedisUnreachableFailsFastWithoutPassword(t *testing.T) {
	srv := redistest.Start(t, "--requirepass", "S3cretPW")
	ctx := context.Background()

	wrong, err := NewRedisStore("redis://:WrongPW99@"+srv.Addr+"/0", "p:")
	require.NoError(t, err)
	defer wrong.Close()
	l := NewLedger(wrong, Options{CallTimeout: time.Second})
	_, err = l.TryAcquire(ctx, "c")
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrStore)
	assert.NotContains(t, err.Error(), "WrongPW99")
	assert.NotContains(t, wrong.Describe(), "WrongPW99")

	good, err := NewRedisStore("redis://:S3cretPW@"+srv.Addr+"/0", "p:")
	require.NoError(t, err)
	defer good.Close()
	require.NoError(t, good.Ping(ctx))
	srv.Stop()
	l = NewLedger(good, Options{CallTimeout: time.Second})
	start := time.Now()
	_, err = l.Acquire(ctx, "c")
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrStore), "%v", err)
	assert.NotContains(t, err.Error(), "S3cretPW")
	assert.Less(t, time.Since(start), 30*time.Second, "every store call is bounded")
}

func TestRedactURL(t *testing.T) {
	assert.Equal(t, "redis://u:xxxxx@h:6379/2", RedactURL("redis://u:p%40ss@h:6379/2"))
	assert.Equal(t, "rediss://h:6380/0", RedactURL("rediss://h:6380/0"))
	_, err := NewRedisStore("http://:pw123@h/0", "p:")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "pw123")
}
