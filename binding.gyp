{
  "targets": [
    {
      "target_name": "rnnkit",
      "sources": ["<!@(node native/tools/sources.js cpu)"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/kernels",
        "native/napi",
        "cuda"
      ],
      "defines": [
        "NAPI_VERSION=9",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "cflags!": ["-fno-exceptions", "-O2", "-O0"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=c++17", "-std=gnu++20", "-O2", "-O0"],
      # -Wno-psabi: the vector kernels pass 32- and 64-byte vectors between always-inlined helpers
      # of one ISA, so GCC's note that such arguments changed ABI in GCC 4.6 never applies.
      "cflags": ["-O3", "-fvisibility=hidden", "-Wall", "-Wno-psabi"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-frtti", "-fvisibility=hidden", "-Wall"],
      "ldflags": ["-pthread"],
      "conditions": [
        # arm64 has fused multiply-add in its baseline and GCC contracts a*b+c in C++ by default:
        # the optimizer steps promise unfused arithmetic (identical bits on every path), and the
        # kernels that want FMA call it explicitly (vfmaq_f32). CMakeLists.txt does the same.
        ["target_arch=='arm64'", {
          "cflags": ["-ffp-contract=off"]
        }]
      ],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CPLUSPLUSFLAGS": ["-O3"]
      }
    }
  ]
}
