package main

import (
	"github.com/labctl/lab/provision"
	"github.com/labctl/lab/topology"
)

func provisionFacts(lab *topology.Lab, n topology.Node) []string {
	return provision.Env(provision.Facts(lab, n))
}
