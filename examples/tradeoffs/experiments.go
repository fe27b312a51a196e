package main

import "github.com/sysdesign-go/sysdesign/examples/internal/lab"

// experiments is the lab's registry, in the order the report shows them.
// Each topic keeps its experiments in its own file.
func experiments() []lab.Experiment {
	var all []lab.Experiment
	all = append(all, scalingExperiments()...)
	all = append(all, lbExperiments()...)
	all = append(all, cacheExperiments()...)
	all = append(all, shardExperiments()...)
	all = append(all, resilienceExperiments()...)
	all = append(all, ratelimitExperiments()...)
	all = append(all, consensusExperiments()...)
	return all
}
