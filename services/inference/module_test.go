package inference

import "testing"

func TestDeprecatedNATSAlias(t *testing.T) {
	tests := []struct {
		name    string
		env     []string
		want    string // MXP_INFERENCE_NATS after the mapping ("" for unset)
		usedOld bool
	}{
		{"old name only", []string{"MXP_NATS_URL=nats://127.0.0.1:1"}, "nats://127.0.0.1:1", true},
		{"new name wins", []string{"MXP_NATS_URL=nats://127.0.0.1:1", "MXP_INFERENCE_NATS=nats://127.0.0.1:2"}, "nats://127.0.0.1:2", false},
		{"neither", []string{"HOME=/"}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, used := withDeprecatedEnv(tc.env)
			got, _ := envLookup(env)("MXP_INFERENCE_NATS")
			if got != tc.want || used != tc.usedOld {
				t.Fatalf("MXP_INFERENCE_NATS=%q used old=%v, want %q %v", got, used, tc.want, tc.usedOld)
			}
		})
	}
}
