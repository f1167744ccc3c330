package transparency

import (
	"net"
	"sync"
	"time"
)

// DefaultMaxConnsPerClient is the default limit of concurrent connections
// from one client IP address (config max_connections_per_client). It is
// above what `trustfabric bench register` opens at its defaults (64 clients
// with a window of 20), far below the registration slots (8192).
const DefaultMaxConnsPerClient = 2048

// tooManyConns is written to a connection over the per-client limit before
// it is closed.
const tooManyConns = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

// clientLimitListener caps concurrent connections per remote IP address: a
// connection over the cap is answered 429 and closed at once, so that one
// client with many slow or idle connections cannot exhaust the server.
type clientLimitListener struct {
	net.Listener
	max int

	mu    sync.Mutex
	count map[string]int
}

// LimitConnsPerClient wraps ln so that each remote IP address holds at most
// max connections; one more is answered 429 (Retry-After: 1) and closed at
// accept. max <= 0 returns ln unchanged.
func LimitConnsPerClient(ln net.Listener, max int) net.Listener {
	if max <= 0 {
		return ln
	}
	return &clientLimitListener{Listener: ln, max: max, count: map[string]int{}}
}

func (l *clientLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		l.mu.Lock()
		over := l.count[ip] >= l.max
		if !over {
			l.count[ip]++
		}
		l.mu.Unlock()
		if !over {
			return &limitedConn{Conn: c, release: func() { l.release(ip) }}, nil
		}
		// A fresh socket's send buffer is empty: this write does not block
		// (and is bounded by the deadline if it would).
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Write([]byte(tooManyConns))
		_ = c.Close()
	}
}

func (l *clientLimitListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.count[ip]--; l.count[ip] <= 0 {
		delete(l.count, ip)
	}
}

func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
