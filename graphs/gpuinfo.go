package graphs

/*
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <tensorflow/c/c_api.h>

// tf_lib_path is the file the C API was loaded from (libtensorflow_cc.so.2
// or the tarball's libtensorflow.so.2), or NULL.
static const char* tf_lib_path(void) {
	Dl_info info;
	if (dladdr((void*)TF_Version, &info) && info.dli_fname) return info.dli_fname;
	return NULL;
}

// can_dlopen reports whether the dynamic loader finds and loads name. The
// handle is kept: TensorFlow loads the same libraries itself.
static int can_dlopen(const char* name) {
	return dlopen(name, RTLD_LAZY | RTLD_LOCAL) != NULL;
}

// gpu_kernels is the serialised KernelList of op's kernels, or NULL.
static TF_Buffer* op_kernels(const char* op) {
	TF_Status* s = TF_NewStatus();
	TF_Buffer* b = TF_GetRegisteredKernelsForOp(op, s);
	if (TF_GetCode(s) != TF_OK) { if (b) TF_DeleteBuffer(b); b = NULL; }
	TF_DeleteStatus(s);
	return b;
}
*/
import "C"

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	kpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/kernel_def_go_proto"
	"google.golang.org/protobuf/proto"
)

// Library variants: the directory name scripts/libtensorflow.sh gives the
// cache folder of each (libtensorflow-<version>-<variant>).
const (
	VariantCPU = "cpu"
	VariantGPU = "gpu"
)

// LibraryInfo says which TensorFlow C library this process runs on and how
// it was built: what `kfash-tf version` and `train` report.
type LibraryInfo struct {
	Path    string `json:"path"`    // the shared library the C API was loaded from
	Dir     string `json:"dir"`     // its install folder (with include/ and lib/)
	Variant string `json:"variant"` // cpu, gpu, or "" when neither the marker nor the folder name says
	// CUDABuild: TensorFlow has CUDA kernels (Conv2D registered for GPU),
	// probed in the loaded library itself.
	CUDABuild bool `json:"cuda_build"`
	// From build-info.json, written at install from the wheel's
	// tensorflow/python/platform/build_info.py ("" when absent).
	CUDAVersion  string   `json:"cuda_version,omitempty"`
	CUDNNVersion string   `json:"cudnn_version,omitempty"`
	ComputeCaps  []string `json:"cuda_compute_capabilities,omitempty"`
}

// Library returns the LibraryInfo of the loaded TensorFlow library.
func Library() LibraryInfo {
	var info LibraryInfo
	if p := C.tf_lib_path(); p != nil {
		info.Path = C.GoString(p)
		if real, err := filepath.EvalSymlinks(info.Path); err == nil {
			info.Path = real
		}
		info.Dir = filepath.Dir(filepath.Dir(info.Path))
	}
	info.CUDABuild = hasGPUKernels("Conv2D")
	var b struct {
		Variant      string   `json:"variant"`
		CUDAVersion  string   `json:"cuda_version"`
		CUDNNVersion string   `json:"cudnn_version"`
		ComputeCaps  []string `json:"cuda_compute_capabilities"`
	}
	if info.Dir != "" {
		if data, err := os.ReadFile(filepath.Join(info.Dir, "build-info.json")); err == nil && json.Unmarshal(data, &b) == nil {
			info.Variant, info.CUDAVersion, info.CUDNNVersion, info.ComputeCaps = b.Variant, b.CUDAVersion, b.CUDNNVersion, b.ComputeCaps
		}
	}
	if info.Variant == "" {
		switch base := filepath.Base(info.Dir); {
		case strings.HasSuffix(base, "-"+VariantCPU):
			info.Variant = VariantCPU
		case strings.HasSuffix(base, "-"+VariantGPU):
			info.Variant = VariantGPU
		}
	}
	return info
}

// hasGPUKernels reports whether op has a kernel registered for GPUs: true
// in a CUDA (or ROCm) build whether or not a GPU or driver is present.
func hasGPUKernels(op string) bool {
	cop := C.CString(op)
	defer C.free(unsafe.Pointer(cop))
	buf := C.op_kernels(cop)
	if buf == nil {
		return false
	}
	defer C.TF_DeleteBuffer(buf)
	var kl kpb.KernelList
	if err := proto.Unmarshal(C.GoBytes(buf.data, C.int(buf.length)), &kl); err != nil {
		return false
	}
	for _, k := range kl.Kernel {
		if k.DeviceType == "GPU" {
			return true
		}
	}
	return false
}

// What a NoGPUError finds missing.
const (
	MissingLibraries = "libraries" // a CPU-only TensorFlow build, or cuDNN not loadable
	MissingDriver    = "driver"    // libcuda.so.1 (the NVIDIA driver) not loadable
	MissingDevice    = "device"    // all there, yet no GPU visible
)

// diagnoseNoGPU says why TensorFlow sees no GPU: which of the libraries,
// the driver or a device is missing, and a detail.
func diagnoseNoGPU() (missing, detail string) {
	lib := Library()
	if !lib.CUDABuild {
		v := lib.Variant
		if v == "" {
			v = "unknown"
		}
		return MissingLibraries, "the TensorFlow library is built without CUDA (variant " + v + ", " + lib.Dir + ")"
	}
	if !canDlopen("libcuda.so.1") {
		return MissingDriver, "libcuda.so.1 (the NVIDIA driver) cannot be loaded"
	}
	if !canDlopen("libcudnn.so.9") && !canDlopen(filepath.Join(lib.Dir, "nvidia", "cudnn", "lib", "libcudnn.so.9")) {
		return MissingLibraries, "cuDNN (libcudnn.so.9) cannot be loaded"
	}
	return MissingDevice, "the driver and CUDA libraries load, but no GPU is visible (CUDA_VISIBLE_DEVICES, or the GPU list)"
}

func canDlopen(name string) bool {
	c := C.CString(name)
	defer C.free(unsafe.Pointer(c))
	return C.can_dlopen(c) != 0
}
