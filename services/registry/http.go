package registry

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// mountHTTP adds the read API:
//
//	GET /v1/agents?capability=a&capability=b,c&name=n&name_prefix=p&tag=t&accepting_only=true&limit=n&after=id
//	GET /v1/agents/{id}
//
// Errors are RFC 9457 problem details with the registry's error code.
func (s *Service) mountHTTP(r chi.Router) {
	r.Get("/v1/agents", func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query()
		dr := mxp.DiscoverRequest{Name: q.Get("name"), NamePrefix: q.Get("name_prefix"), Tag: q.Get("tag"), After: q.Get("after")}
		for _, v := range q["capability"] {
			for c := range strings.SplitSeq(v, ",") {
				if c = strings.TrimSpace(c); c != "" {
					dr.Capabilities = append(dr.Capabilities, c)
				}
			}
		}
		if v := q.Get("accepting_only"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				s.writeProblem(w, "agents", invalid(mxp.CodeInvalidQuery, "accepting_only %q is not a boolean", trunc(v)))
				return
			}
			dr.AcceptingOnly = b
		}
		if l := q.Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil {
				s.writeProblem(w, "agents", invalid(mxp.CodeInvalidQuery, "limit %q is not an integer", l))
				return
			}
			// The HTTP API caps a large limit instead of refusing it (the bus, like the
			// edge, refuses one over mxp.MaxDiscoverLimit).
			dr.Limit = min(n, mxp.MaxDiscoverLimit)
		}
		ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
		defer cancel()
		resp, err := s.discover(ctx, dr)
		if err != nil {
			s.writeProblem(w, "agents", err)
			return
		}
		s.httpReqs.WithLabelValues("agents", "ok").Inc()
		writeJSON(w, http.StatusOK, resp)
	})
	r.Get("/v1/agents/{id}", func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
		defer cancel()
		rec, err := s.get(ctx, chi.URLParam(req, "id"))
		if err != nil {
			s.writeProblem(w, "agent", err)
			return
		}
		s.httpReqs.WithLabelValues("agent", "ok").Inc()
		writeJSON(w, http.StatusOK, rec)
	})
}

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type   string        `json:"type"`
	Title  string        `json:"title"`
	Status int           `json:"status"`
	Detail string        `json:"detail"`
	Code   mxp.ErrorCode `json:"code"`
}

func (s *Service) writeProblem(w http.ResponseWriter, route string, err error) {
	var be *bus.Error
	if !errors.As(err, &be) {
		be = bus.Errorf(mxp.CodeInternal, "internal error")
	}
	status := be.Status()
	s.httpReqs.WithLabelValues(route, string(be.Code)).Inc()
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: be.Message, Code: be.Code})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
