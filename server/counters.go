package server

import "sync/atomic"

// counters are process-wide figures worth logging and testing.
type counters struct {
	sentNotifications      atomic.Int64
	droppedNotifications   atomic.Int64 // the session queue was full
	unflushedNotifications atomic.Int64 // not seen written before the result
	refusedBodies          atomic.Int64 // HTTP request bodies over the limit
	busyCalls              atomic.Int64 // tool calls refused as busy
	cutAnswers             atomic.Int64 // answers cut at the answer cap
	clientAnswers          atomic.Int64 // JSON-RPC responses read from clients (form answers, errors)
}

// Stats is a snapshot of the server's counters.
type Stats struct {
	SentNotifications      int64
	DroppedNotifications   int64
	UnflushedNotifications int64
	RefusedBodies          int64
	BusyCalls              int64
	CutAnswers             int64
	ClientAnswers          int64
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		SentNotifications:      s.counters.sentNotifications.Load(),
		DroppedNotifications:   s.counters.droppedNotifications.Load(),
		UnflushedNotifications: s.counters.unflushedNotifications.Load(),
		RefusedBodies:          s.counters.refusedBodies.Load(),
		BusyCalls:              s.counters.busyCalls.Load(),
		CutAnswers:             s.counters.cutAnswers.Load(),
		ClientAnswers:          s.counters.clientAnswers.Load(),
	}
}
