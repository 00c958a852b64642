module github.com/mxp-mesh/mesh/pkg/agent

go 1.26
