package main

import "github.com/sysdesign-go/sysdesign/examples/internal/lab"

// experiments is the lab's registry, in the order the report shows them.
// Each experiment lives in a file of its own, named for it; the machinery a
// topic's experiments share is in its _sim.go file.
func experiments() []lab.Experiment {
	return []lab.Experiment{
		scalingExperiment,

		lbCapacityExperiment,
		lbLongRequestsExperiment,
		lbIPHashExperiment,
		lbHealthExperiment,
		lbGeoExperiment,
		lbLinkerdExperiment,

		cachePoliciesExperiment,
		cacheStampedeExperiment,
		cacheWriteBehindExperiment,
		cacheRefreshAheadExperiment,
		cacheL1L2Experiment,
		cacheVsOtterExperiment,

		shardMovementExperiment,
		shardBalanceExperiment,
		shardHotspotExperiment,
		shardDirectoryExperiment,
		shardScatterExperiment,
		shardRouterOverheadExperiment,

		resilienceCascadeExperiment,
		resilienceRetryStormExperiment,
		resilienceHedgingExperiment,
		resilienceBulkheadsExperiment,
		resilienceSheddingExperiment,

		ratelimitShapesExperiment,
		ratelimitAccuracyExperiment,
		ratelimitMemoryExperiment,
		ratelimitLocalVsGlobalExperiment,
		ratelimitRedisGlobalExperiment,

		consensusElectionExperiment,
		consensusWriteLatencyExperiment,
		consensusCAPExperiment,
		consensusStaleReadsExperiment,

		discoveryRemovalExperiment,
		discoverySidesExperiment,
		discoveryFanoutExperiment,

		replicaCAPExperiment,
		replicaPBSExperiment,
		replicaSessionsExperiment,
		replicaLWWExperiment,

		chatDeliveryExperiment,
		chatFanoutExperiment,

		feedFanoutExperiment,
		feedThresholdExperiment,

		shopInventoryExperiment,
		shopSagaExperiment,
	}
}
