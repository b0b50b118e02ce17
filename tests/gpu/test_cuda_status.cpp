// The CUDA backend's answer on a machine where it cannot run (label cpu): a clean non-SUCCESS
// status from posattn_backend_available() and posattn_context_create(), never a crash, and a
// reason that names the CUDA error (CUDA builds) or says the backend is not built in.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "posattn.h"

#if POSATTN_TEST_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace {

TEST(CudaBackendStatus, UnusableHereFailsCleanlyAndSaysWhy) {
  char why[512] = "";
  const posattn_status st = posattn_backend_available(POSATTN_BACKEND_CUDA, why, sizeof why);
  if (st == POSATTN_STATUS_SUCCESS)
    GTEST_SKIP() << "a usable GPU is present: the gpu label tests the CUDA backend here";
  posattn_context *ctx = nullptr;
  EXPECT_EQ(posattn_context_create(POSATTN_BACKEND_CUDA, 0, &ctx), st);
  EXPECT_EQ(ctx, nullptr);
  const std::string reason(why);
#if POSATTN_TEST_WITH_CUDA
  EXPECT_TRUE(st == POSATTN_STATUS_NO_DEVICE || st == POSATTN_STATUS_DEVICE_ERROR)
      << posattn_status_string(st) << ": " << reason;
  // Ask the runtime ourselves: when it fails, its own error text must be in the reason.
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    EXPECT_NE(reason.find(cudaGetErrorString(e)), std::string::npos) << reason;
    EXPECT_NE(reason.find(cudaGetErrorName(e)), std::string::npos) << reason;
    EXPECT_NE(reason.find("cudaGetDeviceCount"), std::string::npos) << reason;
  } else {
    EXPECT_FALSE(reason.empty());
  }
#else
  EXPECT_EQ(st, POSATTN_STATUS_BACKEND_UNAVAILABLE) << reason;
  EXPECT_NE(reason.find("not built in"), std::string::npos) << reason;
#endif
}

TEST(CudaBackendStatus, NegativeDeviceIsAnInvalidArgument) {
  posattn_context *ctx = nullptr;
  EXPECT_EQ(posattn_context_create(POSATTN_BACKEND_CUDA, -1, &ctx),
            POSATTN_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(ctx, nullptr);
}

// A device ordinal past the last GPU is never usable, with or without a GPU.
TEST(CudaBackendStatus, DeviceBeyondTheLastOneIsNoDevice) {
  posattn_context *ctx = nullptr;
  const posattn_status st = posattn_context_create(POSATTN_BACKEND_CUDA, 4096, &ctx);
  EXPECT_EQ(ctx, nullptr);
#if POSATTN_TEST_WITH_CUDA
  EXPECT_TRUE(st == POSATTN_STATUS_NO_DEVICE || st == POSATTN_STATUS_DEVICE_ERROR)
      << posattn_status_string(st);
#else
  EXPECT_EQ(st, POSATTN_STATUS_BACKEND_UNAVAILABLE);
#endif
}

}  // namespace
