package inference

import "github.com/mxp-mesh/mesh/pkg/common/config"

// WatchConfig makes the reloads that w accepts (file change, SIGHUP, w.Reload) reach s:
// each change of a live key is laid under the providers' own environment (ApplyEnv with
// lookup, os.LookupEnv in production, as at start-up) and swapped in with Reload. A
// config the service rejects is logged and the running one kept; w logs and counts the
// configs it rejects itself. Run w (w.Run) to watch.
func (s *Service) WatchConfig(w *config.Watcher[Config], lookup func(string) (string, bool)) {
	w.OnChange(func(_, c *Config) {
		if err := s.Reload(ApplyEnv(*c, lookup)); err != nil {
			s.log.Error("config reload rejected; keeping the running configuration", "error", err)
		}
	})
}
