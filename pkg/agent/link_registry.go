package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// DeregisterTimeout bounds the wait for the registry's answer to a deregistration.
const DeregisterTimeout = 2 * time.Second

// Register sends AgentRegister and waits for the registry's answer (registryClient); it
// returns the heartbeat interval the registry asks for (0 when it does not say).
func (l *link) Register(ctx context.Context, r Registration) (time.Duration, error) {
	id, err := mxp.ParseAgentID(r.ID)
	if err != nil {
		return 0, Errorf(CodeInvalidArgument, "agent id %q: %v", r.ID, err)
	}
	req := mxp.RegisterRequest{ID: id, Name: r.Name, Capabilities: r.Capabilities,
		Metadata: mxp.AgentMetadata{Version: r.Version, Description: r.Description, Tags: r.Tags}}
	if req.Capabilities == nil {
		req.Capabilities = []string{}
	}
	payload, err := req.AppendPayload(nil)
	if err != nil {
		return 0, &Error{Code: CodeInvalidArgument, Message: err.Error(), Err: err}
	}
	f, err := l.request(ctx, mxp.TypeAgentRegister, 0, payload)
	if err != nil {
		return 0, err
	}
	resp, err := mxp.DecodeRegisterResponse(f.Payload)
	if err != nil {
		return 0, err
	}
	if !resp.Success {
		return 0, Errorf(CodeUnavailable, "registry refused the registration: %s", resp.Message)
	}
	return resp.HeartbeatInterval(), nil
}

// Heartbeat sends AgentHeartbeat with the agent's state and reports whether the registry
// asks for a new registration (registryClient).
func (l *link) Heartbeat(ctx context.Context, agentID string, metadata map[string]string) (bool, error) {
	payload, err := heartbeatPayload(agentID, metadata)
	if err != nil {
		return false, err
	}
	f, err := l.request(ctx, mxp.TypeAgentHeartbeat, 0, payload)
	if err != nil {
		return false, err
	}
	resp, err := mxp.DecodeHeartbeatResponse(f.Payload)
	if err != nil {
		return false, err
	}
	return resp.NeedsRegister || !resp.Success, nil
}

func heartbeatPayload(agentID string, metadata map[string]string) ([]byte, error) {
	id, err := mxp.ParseAgentID(agentID)
	if err != nil {
		return nil, Errorf(CodeInvalidArgument, "agent id %q: %v", agentID, err)
	}
	req := mxp.HeartbeatRequest{AgentID: id}
	if len(metadata) > 0 {
		if req.Metadata, err = json.Marshal(metadata); err != nil {
			return nil, err
		}
	}
	return req.AppendPayload(nil)
}

// Deregister sends a final heartbeat (FlagFinal), which removes the registration, and
// waits briefly for the answer (registryClient).
func (l *link) Deregister(ctx context.Context, agentID string) error {
	payload, err := heartbeatPayload(agentID, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, DeregisterTimeout)
	defer cancel()
	if _, err := l.request(ctx, mxp.TypeAgentHeartbeat, mxp.FlagFinal, payload); err != nil {
		return fmt.Errorf("agent: deregister: %w", err)
	}
	return nil
}
