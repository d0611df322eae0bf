package server

import (
	"net"
	"net/http"
	"testing"
)

// The "metrics" key starts the endpoint with the server, a reload turns it
// off, and Close stops it.
func TestMetricsFromConfig(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	srv, _ := ctlServer(t, `{"metrics": "`+addr+`", "channels": {"A": {}}}`)
	if a := srv.MetricsAddr(); a == nil || a.String() != addr {
		t.Fatalf("MetricsAddr %v, want %s", a, addr)
	}
	if code, _ := ctlGet(t, "http://"+addr+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz %d", code)
	}
	if mf := ctlScrape(t, srv.MetricsAddr()); mf["netcluster_agents"] == nil {
		t.Fatal("no netcluster_agents metric")
	}
	bus := srv.Bus()
	bus.Metrics = ""
	if err := srv.Reload(bus); err != nil {
		t.Fatal(err)
	}
	if a := srv.MetricsAddr(); a != nil {
		t.Fatalf("metrics still on at %v after reload with none", a)
	}
	srv.Close()
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Fatal("metrics endpoint still answers after Close")
	}
}
