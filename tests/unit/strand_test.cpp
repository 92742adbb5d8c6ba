// make_strand_executor: a strand where handlers may run on several threads, none over an io_context made
// for one thread (its handlers already run one at a time, in order).
#include "daemon/model/strand.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <thread>
#include <vector>

namespace notifyd {
namespace {

namespace asio = boost::asio;
using IoStrand = asio::strand<asio::io_context::executor_type>;

TEST(MakeStrandExecutor, IsAStrandOverAnIoContextForSeveralThreads) {
  asio::io_context io(2);
  EXPECT_FALSE(runs_on_one_thread(io));
  auto ex = make_strand_executor(io.get_executor());
  EXPECT_NE(ex.target<IoStrand>(), nullptr);
  asio::io_context unhinted;
  EXPECT_NE(make_strand_executor(unhinted.get_executor()).target<IoStrand>(), nullptr);
}

TEST(MakeStrandExecutor, IsTheIoContextItselfWhenItRunsOnOneThread) {
  asio::io_context io(1);
  EXPECT_TRUE(runs_on_one_thread(io));
  auto ex = make_strand_executor(io.get_executor());
  EXPECT_EQ(ex.target<IoStrand>(), nullptr);
  ASSERT_NE(ex.target<asio::io_context::executor_type>(), nullptr);
  // Still in order, as on a strand.
  std::vector<int> order;
  for (int i = 0; i < 100; ++i) asio::post(ex, [&order, i] { order.push_back(i); });
  io.run();
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[static_cast<std::size_t>(i)], i);
}

TEST(MakeStrandExecutor, SerializesHandlersOnAnIoContextRunByTwoThreads) {
  asio::io_context io(2);
  auto ex = make_strand_executor(io.get_executor());
  int counter = 0;  // unguarded: only the strand makes this safe (and TSan/ASan-clean)
  constexpr int kPosts = 20000;
  for (int i = 0; i < kPosts; ++i) asio::post(ex, [&counter] { ++counter; });
  std::thread other([&io] { io.run(); });
  io.run();
  other.join();
  EXPECT_EQ(counter, kPosts);
}

}  // namespace
}  // namespace notifyd
