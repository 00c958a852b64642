module github.com/mxp-mesh/mesh/pkg/agent

go 1.26.0

require github.com/santhosh-tekuri/jsonschema/v6 v6.0.3

require golang.org/x/text v0.14.0 // indirect

require (
	github.com/cenkalti/backoff/v4 v4.3.0
	github.com/google/uuid v1.6.0
	github.com/mxp-mesh/mesh/services/inference v0.0.0
)

replace github.com/mxp-mesh/mesh/services/inference => ../../services/inference
