// aws-front lets a program that cannot be given an AWS endpoint reach a local one: it is an
// HTTP proxy (HTTPS_PROXY=http://127.0.0.1:PORT) that accepts CONNECT to any host, answers the
// TLS handshake itself with a certificate for that host name signed by its own test CA
// (written to DIR/ca.crt, for AWS_CA_BUNDLE), and forwards each request, Host header kept, to
// UPSTREAM over plain HTTP. Karpenter v1.0.x uses aws-sdk-go v1 (1.55), which reads no
// AWS_ENDPOINT_URL but honours HTTPS_PROXY and AWS_CA_BUNDLE. Go's standard library only.
//
// Usage: aws-front DIR UPSTREAM   (UPSTREAM e.g. http://127.0.0.1:5000). Prints "READY PORT" on
// standard output once it listens on 127.0.0.1:PORT, then one line per request on standard error.
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"
)

type front struct {
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	mu     sync.Mutex
	leaves map[string]*tls.Certificate
	serial int64
	conns  chan net.Conn
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: aws-front DIR UPSTREAM")
		os.Exit(2)
	}
	upstream, err := url.Parse(os.Args[2])
	if err != nil {
		log.Fatalf("aws-front: upstream: %v", err)
	}
	f, err := newFront(os.Args[1])
	if err != nil {
		log.Fatalf("aws-front: %v", err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(upstream)
			r.Out.Host = r.In.Host // the AWS host name: the service and region as the SDK chose them
		},
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.Printf("%s https://%s%s", r.Method, r.Host, r.URL.Path)
		proxy.ServeHTTP(w, r)
	})
	go func() {
		// Requests inside the CONNECT tunnels, after the TLS handshake.
		_ = (&http.Server{Handler: handler}).Serve(chanListener(f.conns))
	}()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatalf("aws-front: %v", err)
	}
	fmt.Printf("READY %d\n", l.Addr().(*net.TCPAddr).Port)
	tlsConfig := &tls.Config{GetCertificate: f.certificate, NextProtos: []string{"http/1.1"}}
	for {
		c, err := l.Accept()
		if err != nil {
			log.Fatalf("aws-front: %v", err)
		}
		go f.connect(c, tlsConfig)
	}
}

// connect reads the CONNECT request, says yes, and hands the TLS side to the HTTP server.
func (f *front) connect(c net.Conn, cfg *tls.Config) {
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		c.Close()
		return
	}
	if req.Method != http.MethodConnect {
		fmt.Fprintf(c, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		c.Close()
		return
	}
	log.Printf("CONNECT %s", req.Host)
	if _, err := fmt.Fprintf(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		c.Close()
		return
	}
	f.conns <- tls.Server(&bufferedConn{Conn: c, r: br}, cfg)
}

func newFront(dir string) (*front, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now().Add(-time.Hour)
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "karpenter-doctor-tests aws-front CA"},
		NotBefore:             now,
		NotAfter:              now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), block, 0o600); err != nil {
		return nil, err
	}
	return &front{caCert: cert, caKey: key, leaves: map[string]*tls.Certificate{}, serial: 1,
		conns: make(chan net.Conn)}, nil
}

// certificate makes (once per name) a leaf certificate for the name the client asked for.
func (f *front) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := hello.ServerName
	if name == "" {
		name = "localhost"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.leaves[name]; ok {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	f.serial++
	now := time.Now().Add(-time.Hour)
	template := &x509.Certificate{
		SerialNumber: big.NewInt(f.serial),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    now,
		NotAfter:     now.Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, f.caCert, &key.PublicKey, f.caKey)
	if err != nil {
		return nil, err
	}
	leaf := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	f.leaves[name] = leaf
	return leaf, nil
}

// bufferedConn reads first what the CONNECT reader already buffered.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

type chanListener chan net.Conn

func (l chanListener) Accept() (net.Conn, error) { return <-l, nil }
func (l chanListener) Close() error              { return nil }
func (l chanListener) Addr() net.Addr            { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
