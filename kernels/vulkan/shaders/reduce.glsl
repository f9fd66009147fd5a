// Workgroup-wide sum and max of one float per invocation, identical on every invocation.
// Include after common.glsl and after `#define WG <local size>`. Uses subgroup arithmetic when
// SUBGROUP is 1 (one partial per subgroup in shared memory), else a shared-memory tree
// (WG must be a power of two). Each call contains barriers: call from uniform control flow.
shared float red_s[WG];

#if SUBGROUP
float wg_sum(float v) {
  v = subgroupAdd(v);
  if (subgroupElect()) red_s[gl_SubgroupID] = v;
  barrier();
  float total = 0.0;
  for (uint i = 0; i < gl_NumSubgroups; ++i) total += red_s[i];
  barrier();
  return total;
}
float wg_max(float v) {
  v = subgroupMax(v);
  if (subgroupElect()) red_s[gl_SubgroupID] = v;
  barrier();
  float m = red_s[0];
  for (uint i = 1; i < gl_NumSubgroups; ++i) m = max(m, red_s[i]);
  barrier();
  return m;
}
#else
float wg_sum(float v) {
  const uint tid = gl_LocalInvocationIndex;
  red_s[tid] = v;
  barrier();
  [[unroll]] for (uint s = WG / 2; s > 0; s >>= 1) {
    if (tid < s) red_s[tid] += red_s[tid + s];
    barrier();
  }
  const float total = red_s[0];
  barrier();
  return total;
}
float wg_max(float v) {
  const uint tid = gl_LocalInvocationIndex;
  red_s[tid] = v;
  barrier();
  [[unroll]] for (uint s = WG / 2; s > 0; s >>= 1) {
    if (tid < s) red_s[tid] = max(red_s[tid], red_s[tid + s]);
    barrier();
  }
  const float m = red_s[0];
  barrier();
  return m;
}
#endif
