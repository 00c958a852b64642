package config_test

import (
	"fmt"
	"time"

	"github.com/mxp-mesh/mesh/pkg/common/config"
)

type ExampleConfig struct {
	Addr    string        `yaml:"addr" flag:"addr" usage:"listen address"`
	Timeout time.Duration `yaml:"timeout" reload:"live"`
}

func (c ExampleConfig) Validate() error {
	if c.Timeout <= 0 {
		return config.FieldError("timeout", "must be positive, got %v", c.Timeout)
	}
	return nil
}

// A service loads its typed config: defaults, then a YAML file, then MXP_DEMO_* variables,
// then flags.
func ExampleLoader() {
	l := &config.Loader[ExampleConfig]{
		Service:  "demo",
		Defaults: func() ExampleConfig { return ExampleConfig{Addr: ":8080", Timeout: time.Second} },
		Env:      []string{"MXP_DEMO_TIMEOUT=5s"},
		Args:     []string{"--addr", "127.0.0.1:9000"},
	}
	cfg, err := l.Load()
	fmt.Println(cfg.Addr, cfg.Timeout, err)

	bad := &config.Loader[ExampleConfig]{Service: "demo", Env: []string{"MXP_DEMO_TIMEOUT=0s"}}
	_, err = bad.Load()
	fmt.Println(err)
	// Output:
	// 127.0.0.1:9000 5s <nil>
	// config: timeout (validation): must be positive, got 0s
}
