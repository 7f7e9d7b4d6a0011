// gbshim.cc - the C API of gbshim.h over Google Benchmark. Each case is one benchmark with
// Iterations(1) and manual time: one repetition = one fresh child process whose measured
// region the harness times itself, so --benchmark_repetitions=N gives N independent runs.
// Google Benchmark 1.7 has mean/median/stddev aggregates; min, max and the coefficient of
// variation (cv) are added here with ComputeStatistics.
#include "gbshim.h"
#include "stats.h"

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

struct al_gb_state {
    benchmark::State *st;
};

namespace {

double stat_min(const std::vector<double> &v) { return al_stats_min(v.data(), v.size()); }
double stat_max(const std::vector<double> &v) { return al_stats_max(v.data(), v.size()); }
double stat_cv(const std::vector<double> &v) { return al_stats_cv(v.data(), v.size()); }

}  // namespace

extern "C" {

void al_gb_initialize(int *argc, char **argv) { benchmark::Initialize(argc, argv); }

int al_gb_unrecognized(int argc, char **argv)
{
    return benchmark::ReportUnrecognizedArguments(argc, argv) ? 1 : 0;
}

void al_gb_register(const char *name, al_gb_fn fn, void *arg)
{
    benchmark::RegisterBenchmark(name, [fn, arg](benchmark::State &st) {
        al_gb_state s{&st};
        fn(&s, arg);
    })
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond)
        ->ComputeStatistics("min", stat_min)
        ->ComputeStatistics("max", stat_max)
        ->ComputeStatistics("cv", stat_cv, benchmark::StatisticUnit::kPercentage);
}

int al_gb_keep_running(al_gb_state *s) { return s->st->KeepRunning() ? 1 : 0; }

void al_gb_set_iteration_time(al_gb_state *s, double seconds) { s->st->SetIterationTime(seconds); }

void al_gb_skip_with_error(al_gb_state *s, const char *msg) { s->st->SkipWithError(msg); }

void al_gb_counter(al_gb_state *s, const char *name, double value, int flags)
{
    s->st->counters[name] = benchmark::Counter(
        value, benchmark::Counter::kDefaults,
        flags == AL_GB_BYTES ? benchmark::Counter::kIs1024 : benchmark::Counter::kIs1000);
}

void al_gb_set_label(al_gb_state *s, const char *label) { s->st->SetLabel(label); }

void al_gb_add_context(const char *key, const char *value) { benchmark::AddCustomContext(key, value); }

size_t al_gb_run(void) { return benchmark::RunSpecifiedBenchmarks(); }

void al_gb_shutdown(void) { benchmark::Shutdown(); }

}  // extern "C"
