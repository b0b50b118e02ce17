// The CUDA error classifier (host/cuda_error.c) without a GPU: which cudaError_t values are sticky
// (DEVICE_LOST: the CUDA context is unusable) and which are recoverable (DEVICE_ERROR, ALLOC_FAILED
// for an allocation), the messages the CUDA backend gives for its own failures and for an error
// found pending before its work, and posattn_context_last_device_error(). The numbers are those of
// CUDA 13's driver_types.h; a CUDA build checks the classifier's list against that header at
// compile time (kernels/cuda_util.h).
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "pa_test_shim.h"
#include "posattn.h"

namespace {

struct CudaCode {
  const char *name;
  int code;
  posattn_status status;  // what a failed call with this error answers
};

const CudaCode kCodes[] = {
    // sticky: "any further CUDA work will return the same error" (or the context is gone)
    {"cudaErrorCudartUnloading", 4, POSATTN_STATUS_DEVICE_LOST},
    {"cudaErrorECCUncorrectable", 214, POSATTN_STATUS_DEVICE_LOST},
    {"cudaErrorNvlinkUncorrectable", 220, POSATTN_STATUS_DEVICE_LOST},
    {"cudaErrorContained", 226, POSATTN_STATUS_DEVICE_LOST},
    {"cudaErrorIllegalAddress", 700, POSATTN_STATUS_DEVICE_LOST},
    {"cudaErrorLaunchTimeout", 702, POSATTN_STATUS_DEVICE_LOST},
    {"cudaErrorContextIsDestroyed", 709, POSATTN_STATUS_DEVICE_LOST},
    {"cudaErrorAssert", 710, POSATTN_STATUS_DEVICE_LOST},
    {"cudaErrorHardwareStackError", 714, POSATTN_STATUS_DEVICE_LOST},
    {"cudaErrorIllegalInstruction", 715, POSATTN_STATUS_DEVICE_LOST},
    {"cudaErrorMisalignedAddress", 716, POSATTN_STATUS_DEVICE_LOST},
    {"cudaErrorInvalidAddressSpace", 717, POSATTN_STATUS_DEVICE_LOST},
    {"cudaErrorInvalidPc", 718, POSATTN_STATUS_DEVICE_LOST},
    {"cudaErrorLaunchFailure", 719, POSATTN_STATUS_DEVICE_LOST},
    {"cudaErrorTensorMemoryLeak", 721, POSATTN_STATUS_DEVICE_LOST},
    {"cudaErrorMpsClientTerminated", 810, POSATTN_STATUS_DEVICE_LOST},
    {"cudaErrorExternalDevice", 911, POSATTN_STATUS_DEVICE_LOST},
    // recoverable: the call failed, the context is fine
    {"cudaErrorInvalidValue", 1, POSATTN_STATUS_DEVICE_ERROR},
    {"cudaErrorMemoryAllocation", 2, POSATTN_STATUS_ALLOC_FAILED},
    {"cudaErrorInitializationError", 3, POSATTN_STATUS_DEVICE_ERROR},
    {"cudaErrorInvalidConfiguration", 9, POSATTN_STATUS_DEVICE_ERROR},
    {"cudaErrorInsufficientDriver", 35, POSATTN_STATUS_DEVICE_ERROR},
    {"cudaErrorInvalidDeviceFunction", 98, POSATTN_STATUS_DEVICE_ERROR},
    {"cudaErrorNoDevice", 100, POSATTN_STATUS_DEVICE_ERROR},
    {"cudaErrorInvalidDevice", 101, POSATTN_STATUS_DEVICE_ERROR},
    {"cudaErrorNoKernelImageForDevice", 209, POSATTN_STATUS_DEVICE_ERROR},
    {"cudaErrorInvalidResourceHandle", 400, POSATTN_STATUS_DEVICE_ERROR},
    {"cudaErrorNotReady", 600, POSATTN_STATUS_DEVICE_ERROR},
    {"cudaErrorLaunchOutOfResources", 701, POSATTN_STATUS_DEVICE_ERROR},
    {"cudaErrorCooperativeLaunchTooLarge", 720, POSATTN_STATUS_DEVICE_ERROR},
    {"cudaErrorNotSupported", 801, POSATTN_STATUS_DEVICE_ERROR},
    {"cudaErrorStreamCaptureUnsupported", 900, POSATTN_STATUS_DEVICE_ERROR},
    {"cudaErrorStreamCaptureInvalidated", 901, POSATTN_STATUS_DEVICE_ERROR},
    {"cudaErrorUnknown", 999, POSATTN_STATUS_DEVICE_ERROR},
};

bool contains(const std::string &s, const std::string &part) {
  return s.find(part) != std::string::npos;
}

class CudaErrorClass : public ::testing::TestWithParam<CudaCode> {};

TEST_P(CudaErrorClass, OwnFailure) {
  const CudaCode c = GetParam();
  const bool sticky = c.status == POSATTN_STATUS_DEVICE_LOST;
  EXPECT_EQ(pat_cuda_error_is_sticky(c.code), sticky ? 1 : 0);
  const std::string detail = std::string("text of ") + c.name + " (" + c.name + ")";
  char msg[512];
  const posattn_status st =
      pat_cuda_error_report(msg, sizeof msg, c.code, 0, "cudaMemcpyAsync of the tables", detail.c_str());
  EXPECT_EQ(st, c.status) << posattn_status_string(st);
  const std::string m(msg);
  EXPECT_TRUE(contains(m, "cudaMemcpyAsync of the tables")) << m;
  EXPECT_TRUE(contains(m, detail)) << m;
  EXPECT_TRUE(contains(m, "CUDA error " + std::to_string(c.code))) << m;
  EXPECT_EQ(contains(m, "sticky"), sticky) << m;
  EXPECT_EQ(contains(m, "may have caused it"), sticky) << m;  // not blamed on posattn's call
  EXPECT_FALSE(contains(m, "pending")) << m;
}

TEST_P(CudaErrorClass, FoundPendingBeforeTheCall) {
  const CudaCode c = GetParam();
  char msg[512];
  const posattn_status st = pat_cuda_error_report(msg, sizeof msg, c.code, 1, "decode", c.name);
  EXPECT_EQ(st, c.status);
  const std::string m(msg);
  EXPECT_TRUE(contains(m, "an earlier CUDA error is pending, not caused by this call")) << m;
  EXPECT_TRUE(contains(m, "decode")) << m;
  EXPECT_TRUE(contains(m, c.name)) << m;
  EXPECT_EQ(contains(m, "sticky"), c.status == POSATTN_STATUS_DEVICE_LOST) << m;
}

std::string CodeName(const ::testing::TestParamInfo<CudaCode> &info) {
  return std::string(info.param.name) + "_" + std::to_string(info.param.code);
}

INSTANTIATE_TEST_SUITE_P(Codes, CudaErrorClass, ::testing::ValuesIn(kCodes), CodeName);

TEST(CudaErrorClassifier, SuccessIsNotSticky) { EXPECT_EQ(pat_cuda_error_is_sticky(0), 0); }

TEST(CudaErrorClassifier, DeviceLostHasANameInTheDeviceGroup) {
  EXPECT_STREQ(posattn_status_string(POSATTN_STATUS_DEVICE_LOST), "POSATTN_STATUS_DEVICE_LOST");
  EXPECT_EQ(static_cast<int>(POSATTN_STATUS_DEVICE_LOST), 303);
  EXPECT_EQ(posattn_status_group(POSATTN_STATUS_DEVICE_LOST), 300);
}

// The sticky note precedes the CUDA text: a long text truncated by a small buffer keeps it.
TEST(CudaErrorClassifier, StickyNoteSurvivesTruncation) {
  const std::string long_detail(700, 'x');
  char msg[96];
  EXPECT_EQ(pat_cuda_error_report(msg, sizeof msg, 700, 0, "kernel", long_detail.c_str()),
            POSATTN_STATUS_DEVICE_LOST);
  EXPECT_EQ(std::strlen(msg), sizeof msg - 1);
  EXPECT_TRUE(contains(msg, "sticky")) << msg;
}

TEST(CudaErrorClassifier, NullDetailAndBufferAreSafe) {
  char msg[256];
  EXPECT_EQ(pat_cuda_error_report(msg, sizeof msg, 1, 0, "copy", nullptr),
            POSATTN_STATUS_DEVICE_ERROR);
  EXPECT_TRUE(contains(msg, "copy")) << msg;
  EXPECT_EQ(pat_cuda_error_report(nullptr, 0, 719, 1, "copy", "x"), POSATTN_STATUS_DEVICE_LOST);
}

// posattn_context_last_device_error: the code of the last failed call, 0 otherwise.
TEST(LastDeviceError, FollowsTheLastCall) {
  EXPECT_EQ(posattn_context_last_device_error(nullptr), 0);
  posattn_context *ctx = nullptr;
  ASSERT_EQ(posattn_context_create(POSATTN_BACKEND_REF, 0, &ctx), POSATTN_STATUS_SUCCESS);
  EXPECT_EQ(posattn_context_last_device_error(ctx), 0);  // fresh context

  pat_context_fake_device_error(ctx, 700, "an illegal memory access was encountered");
  EXPECT_EQ(posattn_context_last_device_error(ctx), 700);
  EXPECT_TRUE(contains(posattn_context_last_message(ctx), "sticky"));
  // a success clears it, as it clears the message
  EXPECT_EQ(posattn_context_set_stream(ctx, nullptr), POSATTN_STATUS_SUCCESS);
  EXPECT_EQ(posattn_context_last_device_error(ctx), 0);

  // a later failure that is not a CUDA error reports 0, not the stale code
  pat_context_fake_device_error(ctx, 1, "invalid argument");
  EXPECT_EQ(posattn_context_last_device_error(ctx), 1);
  int dummy = 0;
  EXPECT_EQ(posattn_context_set_stream(ctx, &dummy), POSATTN_STATUS_INVALID_ARGUMENT);
  EXPECT_STRNE(posattn_context_last_message(ctx), "");
  EXPECT_EQ(posattn_context_last_device_error(ctx), 0);

  pat_context_fake_device_error(ctx, 719, "unspecified launch failure");
  size_t bytes = 0;
  EXPECT_EQ(posattn_workspace_size(ctx, nullptr, POSATTN_DTYPE_BF16, POSATTN_DTYPE_BF16, &bytes),
            POSATTN_STATUS_NULL_POINTER);
  EXPECT_EQ(posattn_context_last_device_error(ctx), 0);
  posattn_context_destroy(ctx);
}

}  // namespace
