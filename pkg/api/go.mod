module github.com/mxp-mesh/mesh/pkg/api

go 1.26.0
