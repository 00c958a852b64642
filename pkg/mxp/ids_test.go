package mxp

import (
	"encoding/json"
	"testing"
)

func TestAgentID(t *testing.T) {
	a, b := NewAgentID(), NewAgentID()
	if a == b || a.IsZero() {
		t.Fatal("NewAgentID is not random")
	}
	if a[6]>>4 != 4 {
		t.Errorf("version nibble %x, want 4", a[6]>>4)
	}
	back, err := ParseAgentID(a.String())
	if err != nil || back != a {
		t.Fatalf("parse(String) = %v, %v", back, err)
	}
	for _, bad := range []string{"", "registry", "00000000-0000-0000-0000-0000000000g1", "1234"} {
		if _, err := ParseAgentID(bad); err == nil {
			t.Errorf("ParseAgentID(%q) succeeded", bad)
		}
	}
	js, err := json.Marshal(struct{ ID AgentID }{a})
	if err != nil || string(js) != `{"ID":"`+a.String()+`"}` {
		t.Fatalf("JSON %s, %v", js, err)
	}
	var out struct{ ID AgentID }
	if err := json.Unmarshal(js, &out); err != nil || out.ID != a {
		t.Fatalf("JSON round trip: %v", err)
	}
}

func TestServices(t *testing.T) {
	tests := []struct {
		name string
		id   AgentID
		text string
	}{
		{"registry", ServiceRegistry, "00000000-0000-0000-0000-0000000000f1"},
		{"inference", ServiceInference, "00000000-0000-0000-0000-0000000000f2"},
		{"tools", ServiceTools, "00000000-0000-0000-0000-0000000000f3"},
		{"policy", ServicePolicy, "00000000-0000-0000-0000-0000000000f4"},
	}
	for _, tt := range tests {
		if tt.id.String() != tt.text {
			t.Errorf("%s = %s, want %s", tt.name, tt.id, tt.text)
		}
		if id, ok := ServiceByName(tt.name); !ok || id != tt.id {
			t.Errorf("ServiceByName(%q) = %v, %v", tt.name, id, ok)
		}
		if name, ok := ServiceName(tt.id); !ok || name != tt.name {
			t.Errorf("ServiceName(%v) = %q, %v", tt.id, name, ok)
		}
	}
	if _, ok := ServiceByName("billing"); ok {
		t.Error("unknown service found")
	}
	if _, ok := ServiceName(NewAgentID()); ok {
		t.Error("random id is a service")
	}
	if len(ServiceNames()) != len(tests) {
		t.Error("ServiceNames incomplete")
	}
}
