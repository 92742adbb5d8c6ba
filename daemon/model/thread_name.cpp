#include "daemon/model/thread_name.hpp"

#include <pthread.h>

namespace notifyd {

void set_thread_name(const char* name) {
  // Best effort: a name too long or a platform without it leaves the inherited name, which is harmless.
  (void)pthread_setname_np(pthread_self(), name);
}

}  // namespace notifyd
