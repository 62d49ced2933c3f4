package kubeq

import (
	"bytes"
	"fmt"
	"testing"
)

// longTurn is a turn of n answer-token frames, as the server writes them.
func longTurn(n int) []byte {
	var b bytes.Buffer
	b.WriteString(start("bench"))
	for i := range n {
		fmt.Fprintf(&b, `data: {"id": "chatcmpl-5e0c2a91b7d3", "object": "chat.completion.chunk", "created": 1767225629, "model": "kubeintellect", "choices": [{"index": 0, "delta": {"content": "token %d ", "role": "assistant"}, "finish_reason": null}]}`+"\n\n", i)
	}
	b.WriteString(`data: {"id": "chatcmpl-5e0c2a91b7d3", "object": "chat.completion.chunk", "created": 1767225630, "model": "kubeintellect", "ki_event": {"type": "usage", "prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2, "llm_calls": 1}, "choices": []}` + "\n\n")
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// BenchmarkParseLongTurn: one turn of 100k token frames through the SSE
// reader and the decoder (no network).
func BenchmarkParseLongTurn(b *testing.B) {
	data := longTurn(100_000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		tokens := 0
		_, err := readTurn(bytes.NewReader(data), End{}, func(e Event) bool {
			if _, ok := e.(Token); ok {
				tokens++
			}
			return true
		})
		if err != nil || tokens != 100_000 {
			b.Fatalf("err %v, %d tokens", err, tokens)
		}
	}
}

// BenchmarkSSEFramesOnly isolates the SSE reader from JSON decoding.
func BenchmarkSSEFramesOnly(b *testing.B) {
	data := longTurn(100_000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		s := newSSEReader(bytes.NewReader(data))
		n := 0
		for {
			if _, err := s.next(); err != nil {
				break
			}
			n++
		}
		if n != 100_003 {
			b.Fatalf("%d frames", n)
		}
	}
}

// BenchmarkDecodeTokenFrame compares one token frame through the fast path
// and through encoding/json (same run, same frame).
func BenchmarkDecodeTokenFrame(b *testing.B) {
	frame := []byte(`{"id": "chatcmpl-5e0c2a91b7d3", "object": "chat.completion.chunk", "created": 1767225629, "model": "kubeintellect", "choices": [{"index": 0, "delta": {"content": "\u2014 the pod ` + "`checkout`" + ` restarts ", "role": "assistant"}, "finish_reason": null}]}`)
	for _, fast := range []bool{true, false} {
		b.Run(fmt.Sprintf("fast=%v", fast), func(b *testing.B) {
			var d decoder
			evs := make([]Event, 0, maxEventsPerFrame)
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				evs, _ = d.decodeFrame(frame, evs[:0], fast)
				if len(evs) != 1 {
					b.Fatal(evs)
				}
			}
		})
	}
}
