/* A shared object without a descriptor: not a chime plugin. */
int not_a_chime_plugin (void);

int
not_a_chime_plugin (void)
{
  return 42;
}
