module github.com/mxp-mesh/mesh/services/registry

go 1.26
