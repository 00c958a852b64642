module github.com/mxp-mesh/mesh/pkg/mxp

go 1.26
