module github.com/mxp-mesh/mesh/pkg/common

go 1.26
