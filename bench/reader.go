package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// DirectTurn is what the baseline reader saw of one turn.
type DirectTurn struct {
	Answer string
	Frames int   // data frames, [DONE] included
	Bytes  int64 // bytes of the stream
}

// ReadDirect is the baseline: a plain SSE reader (bufio lines, one
// json.Unmarshal per data frame) reading a turn straight from a
// KubeIntellect backend, as a client with no MCP layer would. onStatus, when
// set, is called with each status message and the time it was decoded.
func ReadDirect(ctx context.Context, hc *http.Client, baseURL, session, question string, onStatus func(msg string, at time.Time)) (DirectTurn, error) {
	var out DirectTurn
	body, err := json.Marshal(map[string]any{
		"model":    "kubeintellect-v2",
		"messages": []map[string]string{{"role": "user", "content": question}},
		"stream":   true,
		"user":     "bench",
	})
	if err != nil {
		return out, fmt.Errorf("direct read: encode: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		return out, fmt.Errorf("direct read: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("X-Session-ID", session)
	resp, err := hc.Do(req)
	if err != nil {
		return out, fmt.Errorf("direct read: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return out, fmt.Errorf("direct read: status %d: %s", resp.StatusCode, b)
	}
	var (
		answer strings.Builder
		frame  directFrame
		long   []byte
	)
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		out.Bytes += int64(len(line))
		if err != nil {
			return out, fmt.Errorf("direct read: stream ended without [DONE]: %w", err)
		}
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		out.Frames++
		data = bytes.TrimRight(data, "\r\n")
		if string(data) == "[DONE]" {
			out.Answer = answer.String()
			return out, nil
		}
		frame = directFrame{}
		if err := json.Unmarshal(data, &frame); err != nil {
			return out, fmt.Errorf("direct read: frame %d: %w", out.Frames, err)
		}
		if ev := frame.KiEvent; ev != nil && ev.Type == "status" && onStatus != nil {
			onStatus(ev.Message, time.Now())
		}
		if len(frame.Choices) > 0 {
			answer.WriteString(frame.Choices[0].Delta.Content)
		}
	}
}

// DrainDirect reads a turn's SSE lines without decoding them, to [DONE]:
// the floor set by the backend and the socket, not a real client.
func DrainDirect(ctx context.Context, hc *http.Client, baseURL, session, question string) (DirectTurn, error) {
	var out DirectTurn
	body, _ := json.Marshal(map[string]any{
		"messages": []map[string]string{{"role": "user", "content": question}}, "stream": true,
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		return out, fmt.Errorf("drain: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Session-ID", session)
	resp, err := hc.Do(req)
	if err != nil {
		return out, fmt.Errorf("drain: %w", err)
	}
	defer resp.Body.Close()
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		out.Bytes += int64(len(line))
		if bytes.HasPrefix(line, []byte("data: ")) {
			out.Frames++
			if bytes.HasPrefix(line, []byte("data: [DONE]")) {
				return out, nil
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return out, fmt.Errorf("drain: stream ended without [DONE]: %w", err)
		}
	}
}

type directFrame struct {
	KiEvent *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"ki_event"`
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
	} `json:"choices"`
}

// StampAge parses a "t=<unix nanos>" stamp anywhere in msg and returns how
// long ago (at) it was written.
func StampAge(msg string, at time.Time) (time.Duration, bool) {
	_, rest, ok := strings.Cut(msg, "t=")
	if !ok {
		return 0, false
	}
	var nanos int64
	if _, err := fmt.Sscan(rest, &nanos); err != nil {
		return 0, false
	}
	return at.Sub(time.Unix(0, nanos)), true
}
