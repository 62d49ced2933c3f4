package kubeq

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"encoding/pem"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// Over HTTP/2, net/http re-sends a request by itself after some stream
// resets, even once its body was written. An AtMostOnce turn ("approve")
// must reach the backend once: here a minimal h2 server resets the first
// stream after the whole request arrived, and would answer a second one.
func TestAtMostOnceNotResentOverHTTP2(t *testing.T) {
	ts := httptest.NewUnstartedServer(nil)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600))
	cert := ts.TLS.Certificates
	ts.Close()

	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: cert, NextProtos: []string{"h2"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	var requests atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serveH2RST(c, &requests)
		}
	}()

	c := newClient(t, "https://"+l.Addr().String(), WithCACertFile(caFile), WithRetryDelays(shortDelays...))
	_, err = collect(testCtx(t), c, Turn{Question: "approve", AtMostOnce: true})
	require.Equal(t, int32(1), requests.Load(), "an AtMostOnce turn reached the backend more than once")
	var te *TransportError
	require.ErrorAs(t, err, &te, "err = %v", err)
	require.True(t, te.MaybeDelivered)
}

// serveH2RST speaks just enough HTTP/2 (raw frames) to take requests,
// reset the first after its END_STREAM, and answer later ones with a turn.
func serveH2RST(c net.Conn, requests *atomic.Int32) {
	defer c.Close()
	br := bufio.NewReader(c)
	preface := make([]byte, 24)
	if _, err := io.ReadFull(br, preface); err != nil {
		return
	}
	write := func(typ, flags byte, stream uint32, payload []byte) {
		h := make([]byte, 9)
		h[0], h[1], h[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
		h[3], h[4] = typ, flags
		binary.BigEndian.PutUint32(h[5:], stream)
		_, _ = c.Write(append(h, payload...))
	}
	write(4, 0, 0, nil) // SETTINGS
	for {
		h := make([]byte, 9)
		if _, err := io.ReadFull(br, h); err != nil {
			return
		}
		n := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
		typ, flags := h[3], h[4]
		stream := binary.BigEndian.Uint32(h[5:]) & 0x7fffffff
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			return
		}
		switch typ {
		case 4: // SETTINGS
			if flags&1 == 0 {
				write(4, 1, 0, nil)
			}
		case 1: // HEADERS
			requests.Add(1)
			if flags&1 != 0 {
				write(3, 0, stream, []byte{0, 0, 0, 1})
			}
		case 0: // DATA
			if flags&1 != 0 {
				if requests.Load() == 1 {
					write(3, 0, stream, []byte{0, 0, 0, 1}) // RST_STREAM PROTOCOL_ERROR
				} else {
					write(1, 4, stream, []byte{0x88}) // HEADERS :status 200, END_HEADERS
					write(0, 1, stream, []byte(plainTurn))
				}
			}
		case 6: // PING
			if flags&1 == 0 {
				write(6, 1, 0, p)
			}
		}
	}
}
