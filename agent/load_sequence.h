// The load sequence of one attempt, BpfProbes::LoadWith() in
// load_sequence.cc: open -> choose programs -> set rodata, map sizes and
// the load-time immediates -> load -> check no immediate was left -> load
// the status program's object of its own where chosen (agent/status_cast.h)
// -> write the filters -> attach -> ring buffer reader -> BPF statistics,
// each step checked.
#pragma once

namespace sockeye {

// Sends libbpf's messages to the agent's log: warnings as warnings, the
// rest (verifier logs included) at debug level.
void RouteLibbpfLogs();

}  // namespace sockeye
