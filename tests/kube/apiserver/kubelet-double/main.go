// kubelet-double serves the one kubelet endpoint the tests need, container logs, so that a real
// kube-apiserver can proxy `GET /api/v1/namespaces/NS/pods/NAME/log` to it: the harness
// registers a Node whose status names 127.0.0.1 and this port (daemonEndpoints), and binds pods
// to it (spec.nodeName).
//
// GET /containerLogs/NS/POD/CONTAINER?follow=&timestamps=&sinceTime=&sinceSeconds=&tailLines=&limitBytes=
// reads LOGDIR/NS_POD_CONTAINER.log, written as the container runtime writes it (CRI format, one
// line each: `RFC3339Nano stdout F text`), and answers as the kubelet does: the text, after an
// RFC3339Nano time when timestamps=true; sinceTime as the kube-apiserver forwards it (whole
// seconds, RFC 3339) and inclusive; tailLines counted after sinceTime; with follow=true it goes
// on until LOGDIR/NS_POD_CONTAINER.log.exited appears (the container ended) or the client goes.
// previous=true reads LOGDIR/NS_POD_CONTAINER.previous.log (the container before its restart; a
// 400 when there is none, as the kubelet answers).
// A pod without a log file is 404, as the kubelet answers for a pod it does not run.
//
// TLS: the serving certificate CERT/KEY; clients must present a certificate that CA signed
// (kube-apiserver's --kubelet-client-certificate), as a kubelet with x509 authentication demands.
//
// Usage: kubelet-double LOGDIR CA CERT KEY   prints `READY <port>` once it listens on 127.0.0.1.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: kubelet-double LOGDIR CA CERT KEY")
		os.Exit(2)
	}
	logDir, caFile, certFile, keyFile := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	caPEM, err := os.ReadFile(caFile)
	check(err)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		check(fmt.Errorf("no certificate in %s", caFile))
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	check(err)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", func(w http.ResponseWriter, r *http.Request) {
		base := filepath.Join(logDir, r.PathValue("namespace")+"_"+r.PathValue("pod")+"_"+r.PathValue("container"))
		if r.URL.Query().Get("previous") == "true" {
			// The container before its last restart: its own file; none, as the kubelet answers.
			if _, err := os.Stat(base + ".previous.log"); err != nil {
				http.Error(w, fmt.Sprintf("previous terminated container %q in pod %q not found",
					r.PathValue("container"), r.PathValue("pod")), http.StatusBadRequest)
				return
			}
			serveLog(w, r, base+".previous.log")
			return
		}
		serveLog(w, r, base+".log")
	})
	server := &http.Server{
		Handler: logRequests(mux),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientCAs:    pool,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			MinVersion:   tls.VersionTLS12,
		},
	}
	fmt.Printf("READY %d\n", listener.Addr().(*net.TCPAddr).Port)
	check(server.ServeTLS(listener, "", ""))
}

func logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who := ""
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			who = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		fmt.Fprintf(os.Stderr, "%s %s %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), who, r.Method, r.URL.RequestURI())
		next.ServeHTTP(w, r)
	})
}

type line struct {
	at   time.Time
	text string
}

// entries parses the CRI log lines of data; a last line without its newline is left for later.
func entries(data []byte) (lines []line, used int) {
	for {
		end := bytes.IndexByte(data[used:], '\n')
		if end < 0 {
			return lines, used
		}
		raw := string(data[used : used+end])
		used += end + 1
		parts := strings.SplitN(raw, " ", 4) // time stream tag text
		if len(parts) < 3 {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, parts[0])
		if err != nil {
			continue
		}
		text := ""
		if len(parts) == 4 {
			text = parts[3]
		}
		lines = append(lines, line{at, text})
	}
}

func serveLog(w http.ResponseWriter, r *http.Request, path string) {
	q := r.URL.Query()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		http.Error(w, fmt.Sprintf("pod %s/%s not found", r.PathValue("namespace"), r.PathValue("pod")), http.StatusNotFound)
		return
	} else if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var since time.Time
	if s := q.Get("sinceTime"); s != "" {
		if since, err = time.Parse(time.RFC3339, s); err != nil {
			http.Error(w, "sinceTime: "+err.Error(), http.StatusBadRequest)
			return
		}
	} else if s := q.Get("sinceSeconds"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			http.Error(w, "sinceSeconds: "+err.Error(), http.StatusBadRequest)
			return
		}
		since = time.Now().Add(-time.Duration(n) * time.Second)
	}
	tail := int64(-1)
	if s := q.Get("tailLines"); s != "" {
		if tail, err = strconv.ParseInt(s, 10, 64); err != nil {
			http.Error(w, "tailLines: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	limit := int64(-1)
	if s := q.Get("limitBytes"); s != "" {
		if limit, err = strconv.ParseInt(s, 10, 64); err != nil {
			http.Error(w, "limitBytes: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	stamped, follow := q.Get("timestamps") == "true", q.Get("follow") == "true"
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	out := bufio.NewWriter(w)
	flusher, _ := w.(http.Flusher)
	written := int64(0)
	emit := func(lines []line) bool {
		for _, l := range lines {
			if l.at.Before(since) {
				continue
			}
			s := l.text + "\n"
			if stamped {
				s = l.at.UTC().Format(time.RFC3339Nano) + " " + s
			}
			if limit >= 0 && written+int64(len(s)) > limit {
				s = s[:limit-written]
			}
			n, err := out.WriteString(s)
			written += int64(n)
			if err != nil || limit >= 0 && written >= limit {
				out.Flush()
				return false
			}
		}
		if out.Flush() != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	lines, used := entries(data)
	if tail >= 0 {
		kept := lines[:0:0]
		for _, l := range lines {
			if !l.at.Before(since) {
				kept = append(kept, l)
			}
		}
		if int64(len(kept)) > tail {
			kept = kept[int64(len(kept))-tail:]
		}
		lines = kept
	}
	if !emit(lines) || !follow {
		return
	}
	for {
		exited := fileExists(path + ".exited")
		data, err := os.ReadFile(path)
		if err != nil {
			return
		}
		more, n := entries(data[used:])
		used += n
		if !emit(more) || exited {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubelet-double:", err)
		os.Exit(1)
	}
}
