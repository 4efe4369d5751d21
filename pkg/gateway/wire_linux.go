package gateway

import "golang.org/x/sys/unix"

const canTryWrite = true

// tryWrite is the non-blocking write of tryFrame, run by RawConn.Write
// while it holds the socket (so the descriptor cannot be closed and reused
// meanwhile). The socket is non-blocking: a full one gives EAGAIN, counted
// as nothing written.
func (w *wire) tryWrite(fd uintptr) bool {
	n, err := unix.Writev(int(fd), [][]byte{w.hdr[maxHeaderLen-w.hdrLen:], w.payload})
	if err != nil {
		n = 0
	}
	w.n = n
	return true
}
