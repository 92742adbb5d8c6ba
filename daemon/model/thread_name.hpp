#pragma once
// Names the calling thread (at most 15 characters), for top -H, perf and the benchmarks' per-thread CPU.

namespace notifyd {

void set_thread_name(const char* name);

}  // namespace notifyd
