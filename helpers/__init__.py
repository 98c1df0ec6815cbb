"""LLM Universe 课程的共享代码库。"""
