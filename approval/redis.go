package approval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisStore keeps the ledger in Redis 7 (or Valkey), shared by replicas.
// Keys, under a prefix:
//
//	lease:<conv>  the lease holder's token, expiring (PX)
//	rec:<conv>    the gate record, JSON; never expires by itself
//	due           sorted set: conv by its record's deadline (unix ms)
//	nonce:<n>     "used" or "timedout", expiring when the state it seals has
//
// Every change that depends on the lease or on a nonce is one Lua script,
// so it is atomic with its check.
type redisStore struct {
	c      *redis.Client
	prefix string
	desc   string
}

// NewRedisStore connects to rawURL (redis://[user:password@]host:port/db,
// or rediss:// for TLS). Keys are kept under prefix. The password appears
// in no error and no description.
func NewRedisStore(rawURL, prefix string) (Store, error) {
	desc := RedactURL(rawURL)
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("store %s: not a redis:// or rediss:// URL (redis://[user:password@]host:port/db)", desc)
	}
	opt.DialTimeout = 2 * time.Second
	opt.ReadTimeout = 2 * time.Second
	opt.WriteTimeout = 2 * time.Second
	opt.MaxRetries = 1
	return &redisStore{c: redis.NewClient(opt), prefix: prefix, desc: desc}, nil
}

// RedactURL is rawURL without its password, for logs and errors.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable store URL)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	u.RawQuery = ""
	return u.Redacted()
}

func (s *redisStore) key(kind, id string) string { return s.prefix + kind + ":" + id }
func (s *redisStore) dueKey() string             { return s.prefix + "due" }

// hide keeps the client's errors (which can quote the address, never the
// password) and names the store.
func (s *redisStore) hide(err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return nil
	}
	return fmt.Errorf("%s: %w", s.desc, err)
}

func (s *redisStore) TryLease(ctx context.Context, conv, owner string, ttl time.Duration) (bool, error) {
	ok, err := s.c.SetNX(ctx, s.key("lease", conv), owner, ttl).Result()
	return ok, s.hide(err)
}

var renewScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

func (s *redisStore) RenewLease(ctx context.Context, conv, owner string, ttl time.Duration) (bool, error) {
	n, err := renewScript.Run(ctx, s.c, []string{s.key("lease", conv)}, owner, ttl.Milliseconds()).Int()
	return n == 1, s.hide(err)
}

var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0`)

func (s *redisStore) ReleaseLease(ctx context.Context, conv, owner string) error {
	return s.hide(releaseScript.Run(ctx, s.c, []string{s.key("lease", conv)}, owner).Err())
}

func (s *redisStore) Get(ctx context.Context, conv string) (*Record, error) {
	raw, err := s.c.Get(ctx, s.key("rec", conv)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, s.hide(err)
	}
	var r Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%s: record of %s: %w", s.desc, conv, err)
	}
	return &r, nil
}

var putScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("SET", KEYS[2], ARGV[2])
redis.call("ZADD", KEYS[3], ARGV[3], ARGV[4])
return 1`)

func (s *redisStore) Put(ctx context.Context, conv, owner string, r *Record) error {
	if r.Expires.IsZero() {
		return ErrNoDeadline
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("record of %s: %w", conv, err)
	}
	n, err := putScript.Run(ctx, s.c, []string{s.key("lease", conv), s.key("rec", conv), s.dueKey()},
		owner, raw, r.Expires.UnixMilli(), conv).Int()
	if err != nil {
		return s.hide(err)
	}
	if n != 1 {
		return ErrLeaseLost
	}
	return nil
}

var deleteScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("DEL", KEYS[2])
redis.call("ZREM", KEYS[3], ARGV[2])
return 1`)

func (s *redisStore) Delete(ctx context.Context, conv, owner string) error {
	n, err := deleteScript.Run(ctx, s.c, []string{s.key("lease", conv), s.key("rec", conv), s.dueKey()},
		owner, conv).Int()
	if err != nil {
		return s.hide(err)
	}
	if n != 1 {
		return ErrLeaseLost
	}
	return nil
}

var consumeScript = redis.NewScript(`
local was = redis.call("GET", KEYS[1])
local rec = redis.call("GET", KEYS[2]) or ""
if was then return {was, rec} end
redis.call("SET", KEYS[1], "used", "PXAT", ARGV[1])
return {"fresh", rec}`)

func (s *redisStore) ConsumeNonce(ctx context.Context, conv, nonce string, keep time.Time) (NonceState, *Record, error) {
	res, err := consumeScript.Run(ctx, s.c, []string{s.key("nonce", nonce), s.key("rec", conv)},
		keepAt(keep)).StringSlice()
	if err != nil {
		return NonceUsed, nil, s.hide(err)
	}
	if len(res) != 2 {
		return NonceUsed, nil, fmt.Errorf("%s: unexpected nonce answer", s.desc)
	}
	var rec *Record
	if res[1] != "" {
		rec = &Record{}
		if err := json.Unmarshal([]byte(res[1]), rec); err != nil {
			return NonceUsed, nil, fmt.Errorf("%s: record of %s: %w", s.desc, conv, err)
		}
	}
	switch res[0] {
	case "fresh":
		return NonceFresh, rec, nil
	case "timedout":
		return NonceTimedOut, rec, nil
	}
	return NonceUsed, rec, nil
}

// keepAt is a nonce's expiry in unix ms, at least a second ahead (PXAT in
// the past would delete the key at once).
func keepAt(keep time.Time) string {
	ms := max(keep.UnixMilli(), time.Now().Add(time.Second).UnixMilli())
	return strconv.FormatInt(ms, 10)
}

func (s *redisStore) SpendNonce(ctx context.Context, nonce string, keep time.Time, timedOut bool) error {
	v := "used"
	if timedOut {
		v = "timedout"
	}
	return s.hide(s.c.Do(ctx, "SET", s.key("nonce", nonce), v, "PXAT", keepAt(keep)).Err())
}

func (s *redisStore) Due(ctx context.Context, now time.Time) ([]string, error) {
	out, err := s.c.ZRangeByScore(ctx, s.dueKey(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(now.UnixMilli(), 10)}).Result()
	return out, s.hide(err)
}

func (s *redisStore) Conversations(ctx context.Context) ([]string, error) {
	out, err := s.c.ZRange(ctx, s.dueKey(), 0, -1).Result()
	return out, s.hide(err)
}

func (s *redisStore) Ping(ctx context.Context) error { return s.hide(s.c.Ping(ctx).Err()) }
func (s *redisStore) Describe() string               { return s.desc }
func (s *redisStore) Close() error                   { return s.c.Close() }

func (s *redisStore) SetBlob(ctx context.Context, kind BlobKind, key string, blob []byte, ttl time.Duration) error {
	return s.hide(s.c.Set(ctx, s.key(string(kind), key), blob, ttl).Err())
}

func (s *redisStore) GetBlobs(ctx context.Context, kind BlobKind, keys []string) ([][]byte, error) {
	out := make([][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	full := make([]string, len(keys))
	for i, key := range keys {
		full[i] = s.key(string(kind), key)
	}
	vals, err := s.c.MGet(ctx, full...).Result()
	if err != nil {
		return nil, s.hide(err)
	}
	for i, v := range vals {
		switch v := v.(type) {
		case nil:
		case string:
			out[i] = []byte(v)
		default:
			return nil, fmt.Errorf("redis: MGET gave %T for a blob", v)
		}
	}
	return out, nil
}

func (s *redisStore) GetBlob(ctx context.Context, kind BlobKind, key string) ([]byte, error) {
	raw, err := s.c.Get(ctx, s.key(string(kind), key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return raw, s.hide(err)
}
