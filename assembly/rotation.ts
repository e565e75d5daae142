// Hadamard rotation of K/V rows (llama.cpp-compatible): placeholder until the KV work lands
export const ROTATION_PLACEHOLDER: i32 = 0;
