module github.com/mxp-mesh/mesh/cmd/mxp

go 1.26

require github.com/mxp-mesh/mesh/pkg/mxp v0.0.0

replace github.com/mxp-mesh/mesh/pkg/mxp => ../../pkg/mxp
